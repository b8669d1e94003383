"""DynamoDB attribute values for the domain's plain fields.

The low-level client is used (not boto3's resource layer) so every request
is explicit about its key conditions and can be checked in tests. Times are
stored as fixed-width UTC ISO-8601 strings, which sort as the instants they
name, so they serve as index sort keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from plugins.aws.dynamodb.numbers import number_text

Item = dict[str, dict[str, Any]]


def put_str(item: Item, name: str, value: str | None) -> None:
    """Empty values are left out: DynamoDB refuses empty strings in index keys,
    and an absent attribute keeps a sparse index sparse."""
    if value:
        item[name] = {"S": value}


def put_num(item: Item, name: str, value: float | int | None) -> None:
    """Magnitudes below DynamoDB's smallest (1e-130) as 0 (numbers.py)."""
    if value is not None:
        item[name] = {"N": number_text(value)}


def put_time(item: Item, name: str, value: datetime | None) -> None:
    if value is not None:
        item[name] = {"S": iso(value)}


def put_json(item: Item, name: str, value: Any) -> None:
    """Free-form maps (device metadata, event details) as JSON text: no float to
    Decimal conversion, and what comes back is exactly what went in."""
    item[name] = {"S": json.dumps(value, sort_keys=True, default=str)}


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def get_str(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(value["S"])


def get_num(item: Item, name: str) -> float | None:
    value = item.get(name)
    return None if value is None else float(value["N"])


def get_int(item: Item, name: str, default: int = 0) -> int:
    value = item.get(name)
    return default if value is None else int(value["N"])


def get_time(item: Item, name: str) -> datetime | None:
    value = get_str(item, name)
    return None if value is None else datetime.fromisoformat(value)


def get_json(item: Item, name: str, default: Any) -> Any:
    value = get_str(item, name)
    return default if value is None else json.loads(value)


def get_stamps(item: Item, what: str) -> tuple[datetime, datetime]:
    """``created_at`` and ``updated_at`` of a record every store writes with
    both: one place states that promise (``what`` names the records in the
    message if a foreign item breaks it)."""
    created, updated = get_time(item, "created_at"), get_time(item, "updated_at")
    assert created is not None and updated is not None, f"{what} are stored with both times"
    return created, updated
