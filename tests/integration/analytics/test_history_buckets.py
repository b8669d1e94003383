"""History buckets from the real SQL store, checked against numpy on the raw data
the simulator's models produced, with silences drawn as gaps."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from core.model.timeutil import to_epoch_ms
from plugins.analytics.history import HistoryRequest, load_history
from plugins.analytics.series_math import (
    bucket_stats,
    flag_anomalies,
    gap_count,
    gap_threshold_ms,
    with_gaps,
)
from tests.integration.analytics.fleet_data import write_simulated

DEVICES = ("env-00001", "env-00002")


@pytest.fixture
def day(store):
    """Three hours of 1 Hz data for two environmental sensors; both silent for
    20 minutes from 01:00 (a power cut)."""
    return write_simulated(store.telemetry, DEVICES, seconds=3 * 3600,
                           silent=[(3600, 3600 + 1200)])


@pytest.mark.parametrize("bucket_ms", [1_000, 10_000, 60_000, 7 * 60_000, 3_600_000])
def test_sql_buckets_equal_numpy_on_the_raw_data(store, day, bucket_ms):
    # A start that is not on a bucket boundary: the first bucket is partial,
    # exactly as in the store's contract.
    start = day.start + timedelta(seconds=37)
    end = day.end - timedelta(seconds=11)
    request = HistoryRequest(DEVICES, ("temperature", "pressure"), start, end, bucket_ms)
    got = load_history(store.telemetry, request)
    assert [(s.device_id, s.metric) for s in got] == [
        (d, m) for d in DEVICES for m in ("temperature", "pressure")]
    for series in got:
        key = (series.device_id, series.metric)
        want = bucket_stats(day.ts_ms[key], day.values[key], to_epoch_ms(start),
                            to_epoch_ms(end), bucket_ms)
        assert series.bucket_ms == bucket_ms
        np.testing.assert_array_equal(series.ts_ms, want.start_ms)
        np.testing.assert_array_equal(series.count, want.count)
        np.testing.assert_allclose(series.minimum, want.minimum, rtol=0, atol=1e-9)
        np.testing.assert_allclose(series.maximum, want.maximum, rtol=0, atol=1e-9)
        np.testing.assert_allclose(series.value, want.mean, rtol=1e-12, atol=1e-9)
        # and against a direct numpy reduction of the raw samples in each bucket
        raw_ts, raw_v = day.ts_ms[key], day.values[key]
        inside = (raw_ts >= to_epoch_ms(start)) & (raw_ts < to_epoch_ms(end))
        for i in (0, len(series) // 2, len(series) - 1):
            b0 = series.ts_ms[i]
            sel = inside & (raw_ts >= b0) & (raw_ts < b0 + bucket_ms)
            assert series.count[i] == sel.sum()
            assert series.value[i] == pytest.approx(raw_v[sel].mean(), abs=1e-9)


def test_raw_history_is_every_reading(store, day):
    request = HistoryRequest(DEVICES[:1], ("humidity",), day.start, day.end)
    (series,) = load_history(store.telemetry, request)
    key = (DEVICES[0], "humidity")
    np.testing.assert_array_equal(series.ts_ms, day.ts_ms[key])
    np.testing.assert_array_equal(series.value, day.values[key])
    assert series.bucket_ms is None


def test_the_power_cut_is_a_gap_and_nothing_else_is(store, day):
    for bucket_ms in (None, 60_000, 300_000):
        request = HistoryRequest(DEVICES[:1], ("temperature",), day.start, day.end, bucket_ms)
        (series,) = load_history(store.telemetry, request)
        threshold = gap_threshold_ms(series)
        assert gap_count(series.ts_ms, threshold) == 1, bucket_ms
        ts, (values,) = with_gaps(series.ts_ms, [series.value], threshold)
        nan_at = np.flatnonzero(np.isnan(values))
        assert nan_at.size == 1
        cut_start = to_epoch_ms(day.start) + 3600 * 1000
        cut_end = cut_start + 1200 * 1000
        # the hole sits inside the silence, between the last reading before it
        # and the first after it
        assert ts[nan_at[0] - 1] < cut_start + (bucket_ms or 0)
        assert cut_start <= ts[nan_at[0]] <= cut_end
        assert ts[nan_at[0] + 1] >= cut_end - (bucket_ms or 0)
        assert np.all(np.diff(ts) > 0)


def test_auto_bucket_returns_about_one_bucket_per_pixel(store, day):
    request = HistoryRequest.for_width(DEVICES[:1], ("temperature",), day.start, day.end, 800)
    assert request.bucket_ms == 15_000  # 3 h over 800 px = 13.5 s -> the next nice size
    (series,) = load_history(store.telemetry, request)
    assert 600 <= len(series) <= 800


def test_an_injected_spike_is_flagged_on_store_data(store, day):
    from core.model import Reading
    from core.model.timeutil import from_epoch_ms

    key = (DEVICES[1], "temperature")
    ts = int(day.ts_ms[key][5000])
    store.telemetry.write_batch([Reading(DEVICES[1], "spiky", from_epoch_ms(int(t)), float(v))
                                 for t, v in zip(day.ts_ms[key][:8000], day.values[key][:8000],
                                                 strict=True) if t != ts])
    store.telemetry.write_batch([Reading(DEVICES[1], "spiky", from_epoch_ms(ts),
                                         float(day.values[key][5000]) + 15.0)])
    (series,) = load_history(store.telemetry, HistoryRequest(DEVICES[1:], ("spiky",),
                                                             day.start, day.end))
    flags = flag_anomalies(series, window=120, threshold=6.0)
    # the spike is the most unusual point; the only others are the first readings
    # after the power cut, when the temperature had moved on
    assert flags.ts_ms[np.argmax(np.abs(flags.zscore))] == ts
    cut_end = to_epoch_ms(day.start) + 4800 * 1000
    others = [t for t in flags.ts_ms.tolist() if t != ts]
    assert all(cut_end <= t < cut_end + 60_000 for t in others), others
