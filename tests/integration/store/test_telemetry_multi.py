"""``query_many``: one grouped query for several devices gives exactly what
one ``query`` per device gives, on SQLite and PostgreSQL, with rollups mixed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import event

from core.errors import ValidationError
from core.model import Reading
from core.model.timeutil import from_epoch_ms, to_epoch_ms
from core.ports.telemetry import Series, TelemetryStore
from core.store import Store

T0 = datetime(2024, 9, 1, tzinfo=UTC)
T0_MS = to_epoch_ms(T0)
DEVICES = ["dev-a", "dev-b", "dev-c"]


@pytest.fixture
def seeded(store: Store) -> Store:
    """Three devices with different rates and values, a second metric that must
    not leak in, a device that only has the other metric, and the oldest hour of
    dev-a folded into 1 minute rollups."""
    rng = np.random.default_rng(3)
    readings: list[Reading] = []
    for i, device in enumerate(DEVICES):
        ts = np.sort(rng.choice(3 * 3600, size=2000 + 500 * i, replace=False)) * 1000 + T0_MS
        values = rng.normal(20.0 + i, 3.0, ts.size)
        readings += [Reading(device, "temp", from_epoch_ms(int(t)), float(v))
                     for t, v in zip(ts, values, strict=True)]
        readings += [Reading(device, "hum", from_epoch_ms(int(t)), 50.0) for t in ts[:100]]
    readings.append(Reading("only-hum", "hum", T0 + timedelta(minutes=5), 40.0))
    store.telemetry.write_batch(readings)
    # Fold everything before T0 + 1 h into rollups (all devices; the raw rows go).
    store.telemetry.downsample_before(T0 + timedelta(hours=1), 60_000)
    return store


def _same(a: Series, b: Series) -> None:
    assert (a.device_id, a.metric, a.bucket_ms) == (b.device_id, b.metric, b.bucket_ms)
    assert a.ts_ms.tolist() == b.ts_ms.tolist()
    assert a.count is not None and b.count is not None
    assert a.count.tolist() == b.count.tolist()
    np.testing.assert_allclose(a.value, b.value, rtol=1e-12)
    np.testing.assert_array_equal(a.minimum, b.minimum)
    np.testing.assert_array_equal(a.maximum, b.maximum)


@pytest.mark.parametrize("bucket_ms", [60_000, 7 * 60_000, 3_600_000])
def test_grouped_query_equals_one_query_per_device(seeded: Store, bucket_ms: int) -> None:
    start, end = T0 + timedelta(seconds=37), T0 + timedelta(hours=3, seconds=-11)
    ids = [*DEVICES, "only-hum", "unknown", "dev-a"]
    got = seeded.telemetry.query_many(ids, "temp", start, end, bucket_ms=bucket_ms)
    assert [s.device_id for s in got] == ids
    for series in got:
        _same(series, seeded.telemetry.query(series.device_id, "temp", start, end,
                                             bucket_ms=bucket_ms))
    assert len(got[3]) == 0 and len(got[4]) == 0 and got[3].bucket_ms == bucket_ms
    assert all(len(s) > 0 for s in got[:3])
    # The rolled-up first hour is there (dev-a's 1 minute rollups feed the buckets).
    assert got[0].ts_ms[0] < T0_MS + 3_600_000
    # The one grouped query (what PostgreSQL uses; SQLite runs per-device
    # queries in parallel) and the port's default loop agree on both databases.
    grouped = seeded.telemetry.grouped_buckets(ids, "temp", start, end, bucket_ms)
    loop = TelemetryStore.query_many(seeded.telemetry, ids, "temp", start, end,
                                     bucket_ms=bucket_ms)
    for a, b, c in zip(got, grouped, loop, strict=True):
        _same(a, b)
        _same(a, c)


def test_raw_and_edge_cases(seeded: Store) -> None:
    start, end = T0, T0 + timedelta(hours=3)
    raw = seeded.telemetry.query_many(DEVICES, "temp", start, end)
    for series in raw:
        one = seeded.telemetry.query(series.device_id, "temp", start, end)
        assert series.ts_ms.tolist() == one.ts_ms.tolist() and series.minimum is None
    assert seeded.telemetry.query_many([], "temp", start, end, bucket_ms=60_000) == []
    with pytest.raises(ValidationError):
        seeded.telemetry.query_many(DEVICES, "temp", start, end, bucket_ms=0)
    with pytest.raises(ValidationError):
        seeded.telemetry.grouped_buckets(DEVICES, "temp", start, end, 0)


def test_many_devices_are_chunked(store: Store) -> None:
    ids = [f"d{i:04d}" for i in range(1200)]
    store.telemetry.write_batch([Reading(d, "temp", T0 + timedelta(seconds=i % 60), float(i))
                                 for i, d in enumerate(ids)])
    got = store.telemetry.grouped_buckets(ids, "temp", T0, T0 + timedelta(minutes=1), 60_000)
    assert [float(s.value[0]) for s in got] == [float(i) for i in range(1200)]


def test_grouped_query_is_an_index_range_scan(seeded: Store) -> None:
    """The store's own statement, explained: each device's rows are read from
    the primary key (minute, device_id, ts, metric_set) by a range within each
    minute, never the whole table."""
    engine = seeded.engine
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        seeded.telemetry.grouped_buckets(DEVICES, "temp", T0, T0 + timedelta(hours=3), 60_000)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    # The folds of the minute rollups run first; the bucket read is the union.
    (statement, params), = [(s, p) for s, p in seen if "telemetry_rollup" in s]
    with engine.connect() as conn:
        explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(explain + statement,
                                                                     params).all())
    if engine.dialect.name == "sqlite":
        # the view's messages by their key, each message's slot for the metric by its key
        assert "SEARCH t USING PRIMARY KEY (minute=? AND device_id=? AND ts>? AND ts<?)" \
            in plan, plan
        assert "SEARCH s USING PRIMARY KEY (metric=? AND metric_set=?)" in plan, plan
        assert "SCAN t " not in plan + " " and "SCAN telemetry_message" not in plan, plan
        assert "SEARCH telemetry_minute USING PRIMARY KEY (device_id=? AND metric=? AND " \
               "minute_start>? AND minute_start<?)" in plan, plan
    else:  # a tiny table may be read sequentially; the point is that the key can serve it
        assert "pk_telemetry_message" in plan or "Seq Scan on telemetry_message" in plan, plan
