"""Times and durations as typed on the command line and in the custom range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from plugins.analytics.time_args import (
    TimeArgError,
    format_duration_ms,
    parse_duration_ms,
    parse_instant,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "ms"), [("10s", 10_000), ("1m", 60_000), ("1h", 3_600_000),
                                          ("2d", 172_800_000), ("250ms", 250), ("1.5m", 90_000),
                                          ("1W", 604_800_000)])
def test_durations(text, ms):
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "m", "10", "10 parsecs", "-1m", "0s"])
def test_bad_durations(text):
    with pytest.raises(TimeArgError):
        parse_duration_ms(text)


def test_instants():
    assert parse_instant("now", NOW) == NOW
    assert parse_instant("-1h", NOW) == NOW - timedelta(hours=1)
    assert parse_instant("-90s", NOW) == NOW - timedelta(seconds=90)
    assert parse_instant("+1d", NOW) == NOW + timedelta(days=1)
    assert parse_instant("2026-11-26T08:00:00Z") == datetime(2026, 11, 26, 8, tzinfo=UTC)
    assert parse_instant("2026-11-26T09:00:00+01:00") == datetime(2026, 11, 26, 8, tzinfo=UTC)
    local = parse_instant("2026-11-26T08:00")
    assert local == datetime(2026, 11, 26, 8).astimezone().astimezone(UTC)


@pytest.mark.parametrize("text", ["yesterday", "-1x", "2026-13-01", "  "])
def test_bad_instants_say_what_is_allowed(text):
    with pytest.raises(TimeArgError, match=r"ISO-8601|-1h"):
        parse_instant(text, NOW)


def test_format_duration():
    assert [format_duration_ms(v) for v in (60_000, 90_000, 3_600_000, 1500)] == [
        "1m", "90s", "1h", "1500ms"]
