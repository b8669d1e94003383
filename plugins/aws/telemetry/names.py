"""Every device id and metric name is checked against the protocol's patterns
before it goes into a partition key or a query statement.

The patterns exclude ``#`` (the key separator of the DynamoDB layout) and
quotes (Timestream's string delimiters), so a name that passes cannot change
the meaning of the key or the statement it is put into."""

from __future__ import annotations

from datetime import datetime

from core.errors import ValidationError
from core.model.ids import validate_device_id
from core.model.reading import METRIC_PATTERN
from core.model.timeutil import to_epoch_ms

DAY_MS = 86_400_000
MINUTE_MS = 60_000


def device(value: object) -> str:
    return validate_device_id(value)


def metric(value: object) -> str:
    if not isinstance(value, str) or METRIC_PATTERN.fullmatch(value) is None:
        raise ValidationError(
            f"metric name {value!r} must start with a letter and hold at most 64 letters, "
            "digits, '_' or '.'")
    return value


def bucket(value: int | None) -> int | None:
    if value is not None and value <= 0:
        raise ValidationError(f"bucket size {value} ms must be positive")
    return value


def span(start: datetime, end: datetime) -> tuple[int, int]:
    """[start, end) in epoch milliseconds (aware datetimes only)."""
    return to_epoch_ms(start), to_epoch_ms(end)
