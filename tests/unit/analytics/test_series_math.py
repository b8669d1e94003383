"""The chart maths on known inputs: buckets, bucket sizes, gaps, z-scores."""

from __future__ import annotations

import numpy as np
import pytest

from core.ports.telemetry import Series
from plugins.analytics.series_math import (
    bucket_for_width,
    bucket_stats,
    flag_anomalies,
    gap_threshold_ms,
    rolling_zscore,
    suggested_limit,
    with_gaps,
)


def test_buckets_are_epoch_aligned_and_skip_empty_ones():
    ts = np.array([5_000, 9_999, 10_000, 31_000, 39_000], dtype=np.int64)
    v = np.array([1.0, 3.0, 10.0, -1.0, 5.0])
    b = bucket_stats(ts, v, 4_000, 40_000, 10_000)
    assert b.start_ms.tolist() == [0, 10_000, 30_000]
    assert b.minimum.tolist() == [1.0, 10.0, -1.0]
    assert b.maximum.tolist() == [3.0, 10.0, 5.0]
    assert b.mean.tolist() == [2.0, 10.0, 2.0]
    assert b.count.tolist() == [2, 1, 2]


def test_bucket_range_is_half_open_and_input_order_does_not_matter():
    ts = np.array([3_000, 1_000, 2_000], dtype=np.int64)
    b = bucket_stats(ts, np.array([3.0, 1.0, 2.0]), 1_000, 3_000, 1_000)
    assert b.start_ms.tolist() == [1_000, 2_000]
    assert b.mean.tolist() == [1.0, 2.0]


@pytest.mark.parametrize(("span_ms", "width", "want"), [
    (3_600_000, 1200, 5_000),         # 3 s per pixel -> 5 s
    (600_000, 1200, None),            # 0.5 s per pixel: raw
    (86_400_000, 1200, 120_000),      # 72 s per pixel -> 2 min
    (7 * 86_400_000, 1000, 15 * 60_000),
])
def test_bucket_for_width(span_ms, width, want):
    assert bucket_for_width(span_ms, width) == want


def test_gaps_become_nan_rows_between_the_readings():
    ts = np.array([0, 1000, 2000, 10_000, 11_000], dtype=np.int64)
    series = Series("d", "m", ts, np.arange(5.0))
    out_ts, (out_v,) = with_gaps(ts, [series.value], gap_threshold_ms(series))
    assert out_ts.tolist() == [0, 1000, 2000, 6000, 10_000, 11_000]
    assert np.isnan(out_v[3]) and np.isfinite(np.delete(out_v, 3)).all()


def test_aggregated_series_gap_is_one_missing_bucket():
    ts = np.array([0, 60_000, 180_000], dtype=np.int64)
    series = Series("d", "m", ts, np.ones(3), np.ones(3), np.ones(3),
                    np.ones(3, dtype=np.int64), 60_000)
    out_ts, _ = with_gaps(ts, [series.value], gap_threshold_ms(series))
    assert out_ts.tolist() == [0, 60_000, 120_000, 180_000]


def test_buckets_finer_than_the_readings_still_draw_a_line():
    """A reading every 5 s in 2 s buckets leaves every other bucket empty;
    that is the device's pace, not a silence (it drew no line at all)."""
    ts = (np.arange(0, 120_000, 5_000) // 2_000 * 2_000).astype(np.int64)
    n = ts.size
    series = Series("d", "m", ts, np.ones(n), np.ones(n), np.ones(n),
                    np.ones(n, dtype=np.int64), 2_000)
    out_ts, _ = with_gaps(ts, [series.value], gap_threshold_ms(series))
    assert out_ts.tolist() == ts.tolist()
    # a real silence (a restart of a minute) is still a gap
    late = np.concatenate([ts, ts[-1] + 60_000 + ts]).astype(np.int64)
    m = late.size
    restarted = Series("d", "m", late, np.ones(m), np.ones(m), np.ones(m),
                       np.ones(m, dtype=np.int64), 2_000)
    out_ts, (out_v,) = with_gaps(late, [restarted.value], gap_threshold_ms(restarted))
    assert out_ts.size == m + 1 and np.isnan(out_v).sum() == 1


def test_rolling_zscore_matches_a_plain_window_computation():
    rng = np.random.default_rng(3)
    x = 1013.0 + rng.normal(0, 0.2, 500)  # large offset: cancellation must not bite
    z, mean = rolling_zscore(x, 30, min_periods=10)
    for i in (10, 29, 30, 31, 250, 499):
        w = x[max(i - 30, 0):i]  # up to 30 points before i
        assert mean[i] == pytest.approx(w.mean(), abs=1e-9)
        assert z[i] == pytest.approx((x[i] - w.mean()) / w.std(ddof=1), rel=1e-6)
    assert np.isnan(z[:10]).all()


def test_spike_is_flagged_and_noise_is_not():
    rng = np.random.default_rng(5)
    values = rng.normal(20.0, 0.5, 2000)
    values[1500] += 8.0
    series = Series("d", "temperature", np.arange(2000, dtype=np.int64) * 1000, values)
    flags = flag_anomalies(series, window=100, threshold=5.0)
    assert flags.ts_ms.tolist() == [1_500_000]
    assert flags.zscore[0] > 10
    with pytest.raises(ValueError, match="threshold"):
        flag_anomalies(series, threshold=0)


def test_flat_baseline_does_not_divide_by_zero():
    values = np.r_[np.full(100, 5.0), 6.0]
    z, _ = rolling_zscore(values, 50)
    assert np.isfinite(z[50:]).all() and z[-1] > 1000


def test_suggested_limit_sits_between_normal_and_the_anomaly():
    assert suggested_limit(30.0, 20.0) == ("above", 25.0)
    assert suggested_limit(-4.0, 2.0) == ("below", -1.0)


def test_aggregated_series_flag_the_bucket_extreme():
    rng = np.random.default_rng(9)
    mean = 20.0 + rng.normal(0, 0.05, 300)
    low = mean - 0.5 + rng.normal(0, 0.05, 300)
    high = mean + 0.5 + rng.normal(0, 0.05, 300)
    high[250] += 12.0  # one spike inside a bucket: the mean barely moves
    mean[250] += 12.0 / 60
    series = Series("d", "t", np.arange(300, dtype=np.int64) * 60_000, mean, low, high,
                    np.full(300, 60, dtype=np.int64), 60_000)
    flags = flag_anomalies(series, window=60, threshold=6.0)
    assert flags.ts_ms.tolist() == [250 * 60_000]
    assert flags.value[0] == high[250]


def test_local_gaps_follow_the_rate_on_each_side():
    from plugins.analytics.series_math import with_local_gaps

    # back-filled every 5 s, then live every 0.2 s: the change of rate is no gap,
    # a 60 s silence in the live part is
    x = np.r_[0.0, 5.0, 10.0, 10.2 + np.arange(10) * 0.2, 72.0 + np.arange(5) * 0.2]
    out_x, out_y = with_local_gaps(x, np.ones_like(x))
    assert np.count_nonzero(np.isnan(out_y)) == 1
    assert 12.0 < out_x[np.isnan(out_y)][0] < 72.0


def test_peak_downsample_keeps_extremes_gaps_and_the_newest_point() -> None:
    from plugins.analytics.series_math import peak_downsample

    x = np.arange(10_001, dtype=np.float64)
    y = np.sin(x / 50.0)
    y[5_000] = 9.0  # a spike
    y[7_000] = np.nan  # a gap row
    dx, dy = peak_downsample(x, y, 2_000)
    assert dx.size <= 2_000 + 20
    assert np.all(np.diff(dx) >= 0)
    assert np.nanmax(dy) == 9.0 and np.nanmin(dy) == pytest.approx(y[np.isfinite(y)].min())
    assert np.isnan(dy).sum() == 2  # the chunk with the gap row lifts the pen
    assert (dx[-1], dy[-1]) == (x[-1], y[-1])
    small = np.arange(100, dtype=np.float64)
    sx, sy = peak_downsample(small, small, 2_000)
    assert sx is small and sy is small
