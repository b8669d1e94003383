"""Minute rollups behind the bucketed history reads, and the raw read's exact
values, on SQLite and (with SMARTIOT_TEST_PG_URL) PostgreSQL: bucketed answers
from ``telemetry_minute`` equal aggregates computed from the raw readings, at
the edges of the window, across gaps, next to the raw newest hour, after
retention and downsampling cut a minute in two, and after migration 0016 folded
data that was already stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, text

from core.model import Reading
from core.model.timeutil import from_epoch_ms, to_epoch_ms
from core.ports.telemetry import Series
from core.store import Store, migrate
from core.store.telemetry import FOLD_LAG_MS, MINUTE_MS

T0 = datetime(2024, 9, 1, tzinfo=UTC)
T0_MS = to_epoch_ms(T0)
DEVICES = ("dev-a", "dev-b")


def _readings(seed: int = 5, hours: int = 3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Irregular timestamps (not on whole seconds), a 17-minute silence per
    device, values of any sign; plus another metric that must not leak in."""
    rng = np.random.default_rng(seed)
    out = {}
    for i, device in enumerate(DEVICES):
        ts = np.sort(rng.choice(hours * 3600 * 4, size=6000, replace=False)) * 250 + T0_MS
        hole = T0_MS + (40 + 30 * i) * MINUTE_MS + 13_000
        ts = ts[(ts < hole) | (ts >= hole + 17 * MINUTE_MS)]
        out[device] = (ts, rng.normal(i * 5.0, 7.0, ts.size))
    return out


def _write(store: Store, data: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    readings = [Reading(d, "temp", from_epoch_ms(int(t)), float(v))
                for d, (ts, vs) in data.items() for t, v in zip(ts, vs, strict=True)]
    readings += [Reading(d, "hum", from_epoch_ms(int(ts[0])), 1e9) for d, (ts, _) in data.items()]
    store.telemetry.write_batch(readings)


def _expected(ts: np.ndarray, vs: np.ndarray, start_ms: int, end_ms: int, bucket_ms: int
              ) -> tuple[list[int], list[int], list[float], list[float], np.ndarray]:
    keep = (ts >= start_ms) & (ts < end_ms)
    ts, vs = ts[keep], vs[keep]
    origin = start_ms // bucket_ms * bucket_ms
    index = (ts - origin) // bucket_ms
    buckets = np.unique(index)
    starts = [origin + int(b) * bucket_ms for b in buckets]
    counts = [int((index == b).sum()) for b in buckets]
    lows = [float(vs[index == b].min()) for b in buckets]
    highs = [float(vs[index == b].max()) for b in buckets]
    means = np.array([vs[index == b].mean() for b in buckets])
    return starts, counts, lows, highs, means


def _check(series: Series, ts: np.ndarray, vs: np.ndarray, start_ms: int, end_ms: int,
           bucket_ms: int) -> None:
    starts, counts, lows, highs, means = _expected(ts, vs, start_ms, end_ms, bucket_ms)
    assert series.ts_ms.tolist() == starts
    assert series.count is not None and series.count.tolist() == counts
    assert series.minimum is not None and series.minimum.tolist() == lows
    assert series.maximum is not None and series.maximum.tolist() == highs
    np.testing.assert_allclose(series.value, means, rtol=1e-11, atol=1e-12)


def _minute_rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM telemetry_minute")).scalar_one())


@pytest.mark.parametrize("bucket_ms", [MINUTE_MS, 5 * MINUTE_MS, 3_600_000])
def test_bucketed_reads_from_minutes_equal_raw_aggregates(store: Store, bucket_ms: int) -> None:
    data = _readings()
    _write(store, data)
    assert _minute_rows(store) == 0
    # Window edges inside minutes and inside buckets: the partial minutes at
    # both ends are read raw, whole ones from the rollups.
    start, end = T0 + timedelta(minutes=7, seconds=21.5), T0 + timedelta(hours=2, seconds=44.25)
    got = store.telemetry.query_many(list(DEVICES), "temp", start, end, bucket_ms=bucket_ms)
    assert _minute_rows(store) > 0  # folded on the way
    for series, device in zip(got, DEVICES, strict=True):
        _check(series, *data[device], to_epoch_ms(start), to_epoch_ms(end), bucket_ms)
    # Again, now answered from what is folded; one device through query().
    one = store.telemetry.query("dev-b", "temp", start, end, bucket_ms=bucket_ms)
    _check(one, *data["dev-b"], to_epoch_ms(start), to_epoch_ms(end), bucket_ms)
    grouped = store.telemetry.grouped_buckets(list(DEVICES), "temp", start, end, bucket_ms)
    for series, device in zip(grouped, DEVICES, strict=True):
        _check(series, *data[device], to_epoch_ms(start), to_epoch_ms(end), bucket_ms)


def test_minutes_agree_with_the_raw_rows_they_fold(store: Store) -> None:
    data = _readings(seed=9, hours=1)
    _write(store, data)
    store.telemetry.fold_minutes(list(DEVICES), "temp", T0_MS + 3_600_000)
    with store.engine.connect() as conn:
        folded = conn.execute(text(
            "SELECT minute_start, min, max, total, count FROM telemetry_minute"
            " WHERE device_id = 'dev-a' AND metric = 'temp' ORDER BY minute_start")).all()
        leaked = conn.execute(text(
            "SELECT count(*) FROM telemetry_minute WHERE metric = 'hum'")).scalar_one()
    assert leaked == 0
    ts, vs = data["dev-a"]
    starts, counts, lows, highs, means = _expected(ts, vs, T0_MS, T0_MS + 3_600_000, MINUTE_MS)
    assert [int(r[0]) for r in folded] == starts
    assert [int(r[4]) for r in folded] == counts
    assert [float(r[1]) for r in folded] == lows
    assert [float(r[2]) for r in folded] == highs
    np.testing.assert_allclose([float(r[3]) for r in folded], means * np.array(counts),
                               rtol=1e-12)


def test_the_newest_hour_stays_raw_and_new_readings_show(store: Store) -> None:
    data = _readings(hours=3)
    _write(store, data)
    # "Now" is 2 h after T0: minutes of the last hour before it are not folded.
    now_ms = T0_MS + 2 * 3_600_000
    store.telemetry.clock = lambda: now_ms / 1000
    start, end = T0, T0 + timedelta(hours=3)
    bucket = 5 * MINUTE_MS
    first = store.telemetry.query("dev-a", "temp", start, end, bucket_ms=bucket)
    _check(first, *data["dev-a"], T0_MS, to_epoch_ms(end), bucket)
    with store.engine.connect() as conn:
        until = conn.execute(text("SELECT until_ms FROM telemetry_minute_mark"
                                  " WHERE device_id = 'dev-a'")).scalar_one()
        newest = conn.execute(text("SELECT max(minute_start) FROM telemetry_minute")).scalar_one()
    assert until == now_ms - FOLD_LAG_MS
    assert newest < until
    # A reading in the raw hour shows at once; the next fold takes it in.
    ts, vs = data["dev-a"]
    late_ts = now_ms - 20 * MINUTE_MS + 123
    store.telemetry.write_batch([Reading("dev-a", "temp", from_epoch_ms(late_ts), -99.0)])
    ts2, vs2 = np.append(ts, late_ts), np.append(vs, -99.0)
    order = np.argsort(ts2, kind="stable")
    ts2, vs2 = ts2[order], vs2[order]
    second = store.telemetry.query("dev-a", "temp", start, end, bucket_ms=bucket)
    _check(second, ts2, vs2, T0_MS, to_epoch_ms(end), bucket)
    store.telemetry.clock = lambda: (now_ms + 3_600_000) / 1000
    third = store.telemetry.query("dev-a", "temp", start, end, bucket_ms=bucket)
    _check(third, ts2, vs2, T0_MS, to_epoch_ms(end), bucket)


def test_a_late_reading_into_a_folded_minute_is_taken_in_by_a_refold(store: Store) -> None:
    data = _readings(hours=1)
    _write(store, data)
    start, end = T0, T0 + timedelta(hours=1)
    store.telemetry.query("dev-a", "temp", start, end, bucket_ms=MINUTE_MS)
    ts, vs = data["dev-a"]
    late_ts = int(ts[10]) + 1
    store.telemetry.write_batch([Reading("dev-a", "temp", from_epoch_ms(late_ts), 1e6)])
    raw = store.telemetry.query("dev-a", "temp", start, end)
    assert late_ts in raw.ts_ms.tolist()  # raw reads always have it
    store.telemetry.fold_minutes(["dev-a"], "temp", to_epoch_ms(end), refold_from=late_ts)
    ts2, vs2 = np.append(ts, late_ts), np.append(vs, 1e6)
    order = np.argsort(ts2, kind="stable")
    got = store.telemetry.query("dev-a", "temp", start, end, bucket_ms=MINUTE_MS)
    _check(got, ts2[order], vs2[order], T0_MS, to_epoch_ms(end), MINUTE_MS)


def test_retention_cutting_a_minute_keeps_the_buckets_right(store: Store) -> None:
    data = _readings(hours=2)
    _write(store, data)
    start, end = T0, T0 + timedelta(hours=2)
    store.telemetry.query_many(list(DEVICES), "temp", start, end, bucket_ms=MINUTE_MS)
    cutoff_ms = T0_MS + 25 * MINUTE_MS + 30_500  # in the middle of a minute
    store.telemetry.delete_before(from_epoch_ms(cutoff_ms))
    for bucket in (MINUTE_MS, 10 * MINUTE_MS):
        got = store.telemetry.query_many(list(DEVICES), "temp", start, end, bucket_ms=bucket)
        for series, device in zip(got, DEVICES, strict=True):
            ts, vs = data[device]
            keep = ts >= cutoff_ms
            _check(series, ts[keep], vs[keep], T0_MS, to_epoch_ms(end), bucket)


def test_downsampling_cutting_a_minute_counts_every_reading_once(store: Store) -> None:
    data = _readings(hours=2)
    _write(store, data)
    start, end = T0, T0 + timedelta(hours=2)
    store.telemetry.query_many(list(DEVICES), "temp", start, end, bucket_ms=MINUTE_MS)
    # 30 s rollups up to 45 min 30 s: the minute 45 is half rolled up, half raw.
    store.telemetry.downsample_before(T0 + timedelta(minutes=45, seconds=40), 30_000)
    for bucket in (MINUTE_MS, 15 * MINUTE_MS):
        got = store.telemetry.query_many(list(DEVICES), "temp", start, end, bucket_ms=bucket)
        for series, device in zip(got, DEVICES, strict=True):
            _check(series, *data[device], T0_MS, to_epoch_ms(end), bucket)


def test_raw_history_is_exact_at_the_edges(store: Store) -> None:
    values = [5e-324, -1.7976931348623157e308, 1.7976931348623157e308, 0.1 + 0.2,
              -123456.789012345678, 1e-300, 3.0, 2.0 ** 60]
    ts = [T0_MS + i * 1000 for i in range(len(values))]
    store.telemetry.write_batch([Reading("dev-x", "v", from_epoch_ms(t), v)
                                 for t, v in zip(ts, values, strict=True)])
    got = store.telemetry.query("dev-x", "v", from_epoch_ms(ts[1]), from_epoch_ms(ts[-1]))
    assert got.ts_ms.dtype == np.int64 and got.value.dtype == np.float64
    assert got.ts_ms.tolist() == ts[1:-1]  # start inclusive, end exclusive
    assert got.value.tobytes() == np.array(values[1:-1]).tobytes()  # bit for bit
    empty = store.telemetry.query("dev-x", "v", T0 - timedelta(days=1), T0)
    assert len(empty) == 0 and empty.ts_ms.dtype == np.int64
    both = store.telemetry.query_many(["dev-x", "none"], "v", T0, T0 + timedelta(minutes=1))
    assert both[0].value.tobytes() == np.array(values).tobytes() and len(both[1]) == 0


def test_migration_folds_the_data_already_stored(bare_engine: Engine) -> None:
    migrate.upgrade(bare_engine, "0015")
    data = _readings(hours=1)
    with bare_engine.begin() as conn:
        conn.execute(text("INSERT INTO telemetry (device_id, metric, ts, value)"
                          " VALUES (:d, 'temp', :t, :v)"),
                     [{"d": d, "t": int(t), "v": float(v)}
                      for d, (ts, vs) in data.items() for t, v in zip(ts, vs, strict=True)])
    migrate.upgrade(bare_engine)
    with bare_engine.connect() as conn:
        marks = dict(conn.execute(text("SELECT device_id, until_ms FROM telemetry_minute_mark")
                                  ).all())
        rows = conn.execute(text("SELECT count(*), sum(count) FROM telemetry_minute")).one()
    assert set(marks) == set(DEVICES)
    assert int(rows[1]) == sum(ts.size for ts, _ in data.values())
    store = Store(bare_engine)
    end = T0 + timedelta(hours=1)
    got = store.telemetry.query_many(list(DEVICES), "temp", T0, end, bucket_ms=MINUTE_MS)
    for series, device in zip(got, DEVICES, strict=True):
        _check(series, *data[device], T0_MS, to_epoch_ms(end), MINUTE_MS)
