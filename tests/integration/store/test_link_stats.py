from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from core.model.link import LinkStats
from core.store import Store

T0 = datetime(2024, 7, 4, 12, 0, tzinfo=UTC)


def test_round_trip_and_missing(store: Store) -> None:
    assert store.link_stats.get("dev-1") is None
    assert store.link_stats.list() == []
    fresh = LinkStats("dev-2", updated_at=T0)
    full = LinkStats("dev-1", 2**40, 1000, 7, 3, 2, 1, 4, T0)
    store.link_stats.upsert_many([fresh, full])
    store.link_stats.upsert_many([])
    assert store.link_stats.get("dev-1") == full
    assert store.link_stats.get("dev-2") == fresh
    assert store.link_stats.list() == [full, fresh]


def test_upserts_accumulate_the_hubs_running_totals(store: Store) -> None:
    """The hub flushes each device's cumulative snapshot; the row follows it."""
    stats = {f"dev-{i}": LinkStats(f"dev-{i}", updated_at=T0) for i in range(50)}
    for tick in range(1, 4):
        at = T0 + timedelta(seconds=tick)
        for device_id, s in stats.items():
            stats[device_id] = dataclasses.replace(
                s,
                last_seq=tick * 10,
                received=s.received + 10,
                lost=s.lost + tick % 2,
                duplicates=s.duplicates + 1,
                updated_at=at,
            )
        store.link_stats.upsert_many(list(stats.values()))
    got = store.link_stats.get("dev-7")
    assert got == stats["dev-7"]
    assert got is not None and (got.received, got.lost, got.duplicates, got.last_seq) == (
        30,
        2,
        3,
        30,
    )
    assert got.loss_ratio == 2 / 32
    assert store.link_stats.list() == sorted(stats.values(), key=lambda s: s.device_id)


def test_stale_snapshot_never_rolls_counters_back(store: Store) -> None:
    new = LinkStats("dev-1", 50, received=50, updated_at=T0 + timedelta(minutes=1))
    old = LinkStats("dev-1", 20, received=20, updated_at=T0)
    store.link_stats.upsert_many([new])
    store.link_stats.upsert_many([old])
    assert store.link_stats.get("dev-1") == new
    # Within one batch, the newest snapshot per device wins whatever the order.
    newer = dataclasses.replace(new, received=60, updated_at=T0 + timedelta(minutes=2))
    store.link_stats.upsert_many([newer, old, LinkStats("dev-2", updated_at=T0)])
    assert store.link_stats.get("dev-1") == newer
    assert store.link_stats.get("dev-2") == LinkStats("dev-2", updated_at=T0)
