"""One clock convention for the whole product: timezone-aware UTC datetimes.

Naive datetimes are refused at the boundary because a technician's laptop in
one zone and a hub in another would otherwise disagree silently.
"""

from __future__ import annotations

from datetime import UTC, datetime

from core.errors import ValidationError


def utcnow() -> datetime:
    return datetime.now(UTC)


def require_aware(value: datetime, field: str) -> datetime:
    """Normalise to UTC; raise if the datetime carries no zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{field} must carry a timezone (got naive {value.isoformat()})")
    return value.astimezone(UTC)


def to_epoch_ms(value: datetime) -> int:
    return round(require_aware(value, "timestamp").timestamp() * 1000)


def from_epoch_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)
