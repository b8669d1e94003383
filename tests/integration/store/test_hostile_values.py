"""What the edge lets through is storable and queryable everywhere, and what a
flood of bad input leaves behind is bounded: on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.model import Reading
from core.model.link import QUARANTINE_DETAIL_LIMIT, LinkStats, QuarantinedMessage
from core.protocol.payloads import MAX_METRIC_MAGNITUDE, MAX_SEQ, MAX_UPTIME_S
from core.store import Store

T0 = datetime(2024, 9, 1, tzinfo=UTC)


def test_the_largest_accepted_readings_survive_the_grouped_bucket_query(store: Store) -> None:
    """Two 1.7e308 readings made PostgreSQL's grouped average overflow for every
    device in the query; the edge now caps magnitudes, and at the cap the
    query works for every device."""
    readings = []
    for device in ("big-a", "big-b", "small"):
        value = 1.0 if device == "small" else MAX_METRIC_MAGNITUDE
        readings += [Reading(device, "x", T0 + timedelta(seconds=i), value * (-1) ** i)
                     for i in range(600)]
        readings += [Reading(device, "x", T0 + timedelta(seconds=600 + i), value)
                     for i in range(600)]
    store.telemetry.write_batch(readings)
    series = store.telemetry.query_many(["big-a", "big-b", "small"], "x", T0,
                                        T0 + timedelta(hours=1), bucket_ms=3_600_000)
    assert [s.device_id for s in series] == ["big-a", "big-b", "small"]
    assert series[2].value.tolist() == [0.5]
    assert series[0].maximum.tolist() == [MAX_METRIC_MAGNITUDE]


def test_link_stats_hold_the_largest_accepted_seq_and_uptime(store: Store) -> None:
    stats = LinkStats("dev-1", last_seq=MAX_SEQ, received=1, last_uptime=MAX_UPTIME_S,
                      last_ts_ms=2**50, boot_at_ms=2**50 - MAX_UPTIME_S * 1000,
                      connected_at_ms=2**50, updated_at=T0)
    store.link_stats.upsert_many([stats])
    assert store.link_stats.get("dev-1") == stats


def test_quarantine_stores_any_text_and_caps_the_detail(store: Store) -> None:
    hostile = "\x00\ud800\u202e" + "x" * 10_000
    store.quarantine.add_many([QuarantinedMessage(
        "dt/acme/\x00bad/telemetry" + "/x" * 3000, "malformed_json", hostile,
        b"\x00" * 10, "dev-\ud800", T0)])
    [row] = store.quarantine.list()
    assert len(row.detail) <= QUARANTINE_DETAIL_LIMIT
    assert row.detail.startswith("\\x00\\ud800\u202e")
    assert "\x00" not in row.topic and len(row.topic) <= 4096
    assert row.device_id == "dev-\\ud800"


def test_quarantine_retention_by_age_and_by_rows(store: Store) -> None:
    quarantine = store.quarantine
    quarantine.max_rows = 50
    quarantine.max_age = timedelta(days=1)
    old = [QuarantinedMessage("t", "old", "d", b"", "dev", T0 - timedelta(days=3))
           for _ in range(10)]
    new = [QuarantinedMessage("t", "new", f"{i}", b"", "dev", T0 + timedelta(seconds=i))
           for i in range(80)]
    quarantine.add_many(old)
    quarantine.add_many(new)
    deleted = quarantine.enforce_retention(now=T0 + timedelta(minutes=5))
    assert deleted == 40
    kept = quarantine.list(limit=1000)
    assert len(kept) == 50 and {m.reason for m in kept} == {"new"}
    assert sorted(int(m.detail) for m in kept) == list(range(30, 80))


def test_a_flood_of_quarantined_messages_stays_within_the_row_cap(store: Store) -> None:
    quarantine = store.quarantine
    quarantine.max_rows = 300
    for burst in range(5):
        quarantine.add_many([QuarantinedMessage("t", "flood", "d", b"x" * 100, "dev",
                                                T0 + timedelta(seconds=burst))
                             for _ in range(1000)])
    assert len(quarantine.list(limit=10_000)) <= 300


def test_one_row_the_database_refuses_costs_the_others_nothing(store: Store) -> None:
    """Defence in depth behind the edge checks: a value no column can hold (here a
    seq of 2^63) is skipped on its own; the other devices' rows are written."""
    good = [LinkStats(f"dev-{i}", last_seq=i, received=i, updated_at=T0) for i in range(5)]
    poison = LinkStats("dev-bad", last_seq=2**63, received=1, updated_at=T0)
    store.link_stats.upsert_many([*good[:2], poison, *good[2:]])
    assert [s.device_id for s in store.link_stats.list()] == [f"dev-{i}" for i in range(5)]
    assert store.link_stats.skipped == 1  # type: ignore[attr-defined]
