from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select

from core.model import Reading
from core.model.timeutil import from_epoch_ms, to_epoch_ms
from core.store import Store
from core.store.schema import telemetry_rollup

T0 = datetime(2024, 9, 1, tzinfo=UTC)
T0_MS = to_epoch_ms(T0)


def _readings(device: str, metric: str, ts_ms: np.ndarray, values: np.ndarray) -> list[Reading]:
    return [
        Reading(device, metric, from_epoch_ms(int(t)), float(v))
        for t, v in zip(ts_ms, values, strict=True)
    ]


@pytest.fixture
def sample() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    ts = np.sort(rng.choice(600_000, size=800, replace=False)).astype(np.int64) + T0_MS
    return ts, rng.normal(20.0, 5.0, size=ts.size)


def test_write_batch_ignores_duplicates(store: Store) -> None:
    ts = T0_MS + np.arange(100, dtype=np.int64) * 1000
    values = np.arange(100, dtype=np.float64)
    assert store.telemetry.write_batch(_readings("d1", "temp", ts, values)) == 100
    # Half redelivered (with different values: first write wins), half new.
    overlap = T0_MS + np.arange(50, 150, dtype=np.int64) * 1000
    assert store.telemetry.write_batch(_readings("d1", "temp", overlap, values + 1000)) == 50
    batch = _readings("d1", "temp", np.array([T0_MS - 5, T0_MS - 5]), np.array([1.0, 2.0]))
    assert store.telemetry.write_batch(batch) == 1
    assert store.telemetry.write_batch([]) == 0

    series = store.telemetry.query("d1", "temp", T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert len(series) == 151
    assert series.ts_ms.dtype == np.int64 and series.value.dtype == np.float64
    assert np.all(np.diff(series.ts_ms) > 0)
    assert series.value[1:51].tolist() == values[:50].tolist()
    assert series.value[51:101].tolist() == values[50:].tolist()


def test_range_is_half_open_and_isolated_by_device_and_metric(store: Store) -> None:
    ts = T0_MS + np.arange(10, dtype=np.int64) * 1000
    store.telemetry.write_batch(_readings("d1", "temp", ts, ts.astype(float)))
    store.telemetry.write_batch(_readings("d1", "hum", ts, -ts.astype(float)))
    store.telemetry.write_batch(_readings("d2", "temp", ts, ts.astype(float) + 1))
    s = store.telemetry.query("d1", "temp", from_epoch_ms(int(ts[2])), from_epoch_ms(int(ts[7])))
    assert s.ts_ms.tolist() == ts[2:7].tolist()
    assert s.value.tolist() == ts[2:7].astype(float).tolist()
    assert s.minimum is None and s.bucket_ms is None
    empty = store.telemetry.query("d1", "temp", T0 + timedelta(days=1), T0 + timedelta(days=2))
    assert len(empty) == 0


def test_bucket_aggregation_matches_numpy(
    store: Store, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    ts, values = sample
    store.telemetry.write_batch(_readings("d1", "temp", ts, values))
    bucket = 60_000
    start_ms, end_ms = T0_MS + 17_000, T0_MS + 500_000  # not bucket-aligned on purpose
    s = store.telemetry.query(
        "d1", "temp", from_epoch_ms(start_ms), from_epoch_ms(end_ms), bucket_ms=bucket
    )
    inside = (ts >= start_ms) & (ts < end_ms)
    t_in, v_in = ts[inside], values[inside]
    starts = t_in // bucket * bucket
    expected = np.unique(starts)
    assert s.bucket_ms == bucket
    assert s.ts_ms.tolist() == expected.tolist()
    assert s.count is not None and s.minimum is not None and s.maximum is not None
    for i, b in enumerate(expected):
        chunk = v_in[starts == b]
        assert s.count[i] == chunk.size
        assert s.minimum[i] == pytest.approx(chunk.min())
        assert s.maximum[i] == pytest.approx(chunk.max())
        assert s.value[i] == pytest.approx(chunk.mean())
    assert int(s.count.sum()) == int(inside.sum())


def test_a_range_over_minutes_and_before_1970_reads_every_row(store: Store) -> None:
    """The key leads with the reading's minute: a range is read a minute at a
    time, and the minute is floored on both sides of 1970 as the reads floor it
    (truncated, a reading 30 s before the epoch was filed under minute 0 and
    not found by a read of its own minute)."""
    ts = np.array([-90_000, -30_000, -1, 0, 59_999, 60_000, 185_000], dtype=np.int64)
    store.telemetry.write_batch(_readings("d1", "temp", ts, ts.astype(float)))
    s = store.telemetry.query("d1", "temp", from_epoch_ms(-120_000), from_epoch_ms(240_000))
    assert s.ts_ms.tolist() == ts.tolist()
    before = store.telemetry.query("d1", "temp", from_epoch_ms(-60_000), from_epoch_ms(0))
    assert before.ts_ms.tolist() == [-30_000, -1]


def test_latest_and_metrics(store: Store) -> None:
    store.telemetry.write_batch(
        [
            Reading("d1", "temp", T0 + timedelta(seconds=5), 5.0),
            Reading("d1", "temp", T0 + timedelta(seconds=9), 9.0),
            Reading("d1", "hum", T0, 40.0),
            Reading("d2", "temp", T0, 1.0),
        ]
    )
    # An older reading arriving late must not replace the latest one.
    store.telemetry.write_batch([Reading("d1", "temp", T0 + timedelta(seconds=1), 1.0)])
    assert store.telemetry.metrics_for("d1") == ["hum", "temp"]
    latest = store.telemetry.latest("d1")
    assert latest["temp"] == Reading("d1", "temp", T0 + timedelta(seconds=9), 9.0)
    assert latest["hum"].value == 40.0
    assert store.telemetry.latest("nobody") == {}


def test_retention_deletes_only_older_rows(store: Store) -> None:
    ts = T0_MS + np.arange(20, dtype=np.int64) * 1000
    store.telemetry.write_batch(_readings("d1", "temp", ts, ts.astype(float)))
    store.telemetry.write_batch(_readings("d2", "temp", ts, ts.astype(float)))
    removed = store.telemetry.delete_before(from_epoch_ms(int(ts[5])))
    assert removed == 10
    s = store.telemetry.query("d1", "temp", T0, T0 + timedelta(hours=1))
    assert s.ts_ms.tolist() == ts[5:].tolist()


def test_downsampling_folds_into_rollups_and_keeps_aggregates(
    store: Store, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    ts, values = sample
    store.telemetry.write_batch(_readings("d1", "temp", ts, values))
    bucket = 60_000
    window = (T0, T0 + timedelta(hours=1))
    before = store.telemetry.query("d1", "temp", *window, bucket_ms=bucket)

    cutoff = T0_MS + 330_000  # mid-bucket: rounds down to 300_000
    folded = store.telemetry.downsample_before(from_epoch_ms(cutoff), bucket)
    expected_buckets = np.unique(ts[ts < T0_MS + 300_000] // bucket)
    assert folded == expected_buckets.size
    raw = store.telemetry.query("d1", "temp", *window)
    assert raw.ts_ms.tolist() == ts[ts >= T0_MS + 300_000].tolist()

    after = store.telemetry.query("d1", "temp", *window, bucket_ms=bucket)
    assert after.ts_ms.tolist() == before.ts_ms.tolist()
    assert after.count is not None and before.count is not None
    assert after.count.tolist() == before.count.tolist()
    np.testing.assert_allclose(after.value, before.value)
    np.testing.assert_allclose(after.minimum, before.minimum)  # type: ignore[arg-type]
    np.testing.assert_allclose(after.maximum, before.maximum)  # type: ignore[arg-type]
    # Coarser buckets that are multiples of the rollup still see everything.
    coarse = store.telemetry.query("d1", "temp", *window, bucket_ms=5 * bucket)
    assert coarse.count is not None and int(coarse.count.sum()) == ts.size

    # A late reading in an already-folded bucket merges into its rollup row.
    store.telemetry.write_batch([Reading("d1", "temp", T0 + timedelta(seconds=1), -100.0)])
    assert store.telemetry.downsample_before(from_epoch_ms(cutoff), bucket) == 1
    with store.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(telemetry_rollup)).scalar_one()
    assert rows == expected_buckets.size
    merged = store.telemetry.query("d1", "temp", *window, bucket_ms=bucket)
    assert merged.count is not None and merged.minimum is not None
    assert merged.count[0] == before.count[0] + 1
    assert merged.minimum[0] == -100.0
    first = values[ts // bucket == ts[0] // bucket]
    assert merged.value[0] == pytest.approx((first.sum() - 100.0) / (first.size + 1))
