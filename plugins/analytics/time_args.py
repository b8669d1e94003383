"""Times and durations as people type them: ``-1h``, ``now``, ``2026-11-26T08:00Z``, ``1m``.

Shared by ``smartiot export`` and the history picker's custom range so both
accept the same forms and reject the same mistakes with the same words.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
           "w": 7 * 86_400_000}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
FORMS = "ISO-8601 (2026-11-26T08:00:00Z), 'now', or relative like -15m, -1h, -7d"


class TimeArgError(ValueError):
    """A time or duration that could not be read; the message says what is allowed."""


def parse_duration_ms(text: str) -> int:
    """``10s`` -> 10000. Units: ms, s, m (minutes), h, d, w; one number and unit."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise TimeArgError(f"{text!r} is not a duration; use a number and a unit "
                           "(ms, s, m, h, d, w), e.g. 10s, 1m, 1h")
    ms = round(float(match.group(1)) * UNIT_MS[match.group(2)])
    if ms <= 0:
        raise TimeArgError(f"duration {text!r} must be more than zero")
    return int(ms)


def parse_instant(text: str, now: datetime | None = None) -> datetime:
    """An aware UTC datetime. An ISO time without an offset is local time, as
    typed on the operator's machine; ``-1h`` is one hour before ``now``."""
    now = now or datetime.now(UTC)
    value = text.strip()
    if not value:
        raise TimeArgError(f"empty time; use {FORMS}")
    if value.lower() == "now":
        return now
    if value[0] in "+-" and value[1:2].isdigit():
        try:
            ms = parse_duration_ms(value[1:])
        except TimeArgError:
            raise TimeArgError(f"{text!r} is not a relative time; use {FORMS}") from None
        delta = timedelta(milliseconds=ms)
        return now - delta if value[0] == "-" else now + delta
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise TimeArgError(f"{text!r} is not a time; use {FORMS}") from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # local wall-clock time
    return parsed.astimezone(UTC)


def format_duration_ms(ms: int) -> str:
    """The inverse for labels: 60000 -> '1m', 90000 -> '90s'."""
    for unit in ("w", "d", "h", "m", "s"):
        size = UNIT_MS[unit]
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
