"""A single telemetry sample; the unit the telemetry store writes in batches."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from core.errors import ValidationError
from core.model.ids import validate_device_id
from core.model.timeutil import require_aware

METRIC_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,63}")


def validate_metric(name: object) -> str:
    if not isinstance(name, str) or METRIC_PATTERN.fullmatch(name) is None:
        raise ValidationError(
            f"metric name {name!r} must start with a letter and use up to 64 letters, "
            "digits, '_' or '.'"
        )
    return name


@dataclass(frozen=True, slots=True)
class Reading:
    device_id: str
    metric: str
    ts: datetime
    value: float

    def __post_init__(self) -> None:
        validate_device_id(self.device_id)
        validate_metric(self.metric)
        object.__setattr__(self, "ts", require_aware(self.ts, "ts"))
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            raise ValidationError(
                f"{self.device_id}/{self.metric}: value {self.value!r} is not a number"
            )
        if not math.isfinite(self.value):
            raise ValidationError(
                f"{self.device_id}/{self.metric}: value {self.value!r} is not finite"
            )
        object.__setattr__(self, "value", float(self.value))


def keep_newest(newest: dict[str, Reading], readings: Iterable[Reading]) -> None:
    """Per metric the newest of ``readings`` and what ``newest`` held (of equal
    times the later one): what a view of each device's current values keeps, so
    the live bridge and the devices table settle a burst of readings the same way."""
    for reading in readings:
        held = newest.get(reading.metric)
        if held is None or reading.ts >= held.ts:
            newest[reading.metric] = reading
