"""What the audit CLI and page share besides the use cases (context.api.audit):
reading the "since" filter people type."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``30m``, ``2h``, ``7d`` (that long ago) or an ISO date/time (local time
    unless it says otherwise)."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if parts and "".join(n + u for n, u in parts) == cleaned:
        seconds = sum(int(n) * _UNIT_S[u] for n, u in parts)
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (30m, 2h, 7d) nor a date "
                         "(2026-12-01 or 2026-12-01T08:00)") from None
    return when.astimezone(UTC)  # a naive time is taken as local time
