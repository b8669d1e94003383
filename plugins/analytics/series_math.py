"""Numpy maths behind the charts: buckets, gaps, bucket sizes and anomaly flags.

Kept free of Qt so the CLI, tests and benchmarks use exactly the code the charts
use. Everything is vectorised: a day of 1 Hz data is 86,400 points per series
and a Python loop over it would cost more than drawing it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# The chart's bucket sizes live with the history request in core, which the
# History chart, the CLI export and the REST API share.
from core.model.analytics import DAY_MS as DAY_MS
from core.model.analytics import HOUR_MS as HOUR_MS
from core.model.analytics import MINUTE_MS as MINUTE_MS
from core.model.analytics import NICE_BUCKETS_MS as NICE_BUCKETS_MS
from core.model.analytics import RAW_LIMIT_MS_PER_PX as RAW_LIMIT_MS_PER_PX
from core.model.analytics import SECOND_MS as SECOND_MS
from core.model.analytics import bucket_for_width as bucket_for_width
from core.ports.telemetry import Series

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

@dataclass(frozen=True, slots=True)
class Buckets:
    """min/avg/max/count per non-empty bucket; ``start_ms`` is each bucket's start."""

    start_ms: IntArray
    minimum: FloatArray
    mean: FloatArray
    maximum: FloatArray
    count: IntArray


def bucket_stats(ts_ms: IntArray, values: FloatArray, start_ms: int, end_ms: int,
                 bucket_ms: int) -> Buckets:
    """The same buckets the SQL store computes (epoch-aligned, [start, end),
    empty buckets absent), in numpy: for live data that never went through the
    store, and as the reference the store's SQL is tested against."""
    if bucket_ms <= 0:
        raise ValueError(f"bucket size {bucket_ms} ms must be positive")
    ts = np.asarray(ts_ms, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    keep = (ts >= start_ms) & (ts < end_ms)
    ts, vals = ts[keep], vals[keep]
    if ts.size == 0:
        empty_f = np.empty(0, dtype=np.float64)
        return Buckets(np.empty(0, dtype=np.int64), empty_f, empty_f, empty_f,
                       np.empty(0, dtype=np.int64))
    order = np.argsort(ts, kind="stable")
    ts, vals = ts[order], vals[order]
    index = ts // bucket_ms
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
    count = np.diff(np.r_[starts, ts.size]).astype(np.int64)
    return Buckets(
        start_ms=index[starts] * bucket_ms,
        minimum=np.minimum.reduceat(vals, starts),
        mean=np.add.reduceat(vals, starts) / count,
        maximum=np.maximum.reduceat(vals, starts),
        count=count,
    )


def buckets_as_series(device_id: str, metric: str, buckets: Buckets, bucket_ms: int) -> Series:
    return Series(device_id, metric, buckets.start_ms, buckets.mean, buckets.minimum,
                  buckets.maximum, buckets.count, bucket_ms)


def gap_threshold_ms(series: Series) -> float:
    """How long a silence must be before it is drawn as a gap.

    Raw series: three times the typical (median) reporting interval, so
    jitter never breaks the line but a device that was off for a few readings
    visibly does. Aggregated series: a missing bucket, unless buckets are
    finer than the device reports (2 s buckets of a reading every 5 s leave
    every other bucket empty, which drew no line at all): then the same
    three typical intervals as raw data."""
    typical = float(np.median(np.diff(series.ts_ms))) if len(series) >= 3 else 0.0
    if series.bucket_ms:
        one_missing = float(series.bucket_ms) * 1.5
        # Most neighbouring buckets empty: the data is sparser than the buckets.
        return typical * 3.0 if typical > one_missing else one_missing
    if len(series) < 3:
        return float("inf")
    return max(typical, 1.0) * 3.0


def with_gaps(ts_ms: IntArray, columns: list[FloatArray], threshold_ms: float
              ) -> tuple[IntArray, list[FloatArray]]:
    """Insert one NaN row after every silence longer than ``threshold_ms``.

    pyqtgraph's ``connect="finite"`` then lifts the pen there, so a device that
    was offline for an hour shows a hole rather than a straight line bridging it
    (which would look like data). The NaN rows get a time half-way through the
    silence so the x axis stays sorted."""
    if ts_ms.size < 2:
        return ts_ms, columns
    gaps = np.flatnonzero(np.diff(ts_ms) > threshold_ms)
    if gaps.size == 0:
        return ts_ms, columns
    mid = (ts_ms[gaps] + ts_ms[gaps + 1]) // 2
    ts_out = np.insert(ts_ms, gaps + 1, mid)
    cols_out = [np.insert(np.asarray(c, dtype=np.float64), gaps + 1, np.nan) for c in columns]
    return ts_out, cols_out


def with_local_gaps(x: FloatArray, y: FloatArray, factor: float = 3.0
                    ) -> tuple[FloatArray, FloatArray]:
    """Gaps for data whose rate changes (live data after a back-fill from the
    store at another rate): a silence is a gap when it is ``factor`` times longer
    than both neighbouring intervals, rather than than one global step."""
    if x.size < 3:
        return x, y
    d = np.diff(x)
    neighbours = np.maximum(np.r_[d[0], d[:-1]], np.r_[d[1:], d[-1]])
    gaps = np.flatnonzero(d > factor * neighbours)
    if gaps.size == 0:
        return x, y
    mid = (x[gaps] + x[gaps + 1]) / 2
    return np.insert(x, gaps + 1, mid), np.insert(y, gaps + 1, np.nan)


def peak_downsample(x: FloatArray, y: FloatArray, max_points: int
                    ) -> tuple[FloatArray, FloatArray]:
    """At most about ``max_points`` points: chunks of consecutive points become
    their minimum and maximum at the chunk's first x (pyqtgraph's "peak" mode,
    done once per live frame in numpy instead of on every view change). A chunk
    holding a gap row (NaN) becomes a gap, so silences stay visible; the points
    after the last whole chunk, always including the newest, are kept as they
    are."""
    n = int(x.size)
    if n <= max(max_points, 4):
        return x, y
    ds = -(-n // max(max_points // 2, 1))
    whole = (n - 1) // ds * ds
    xs = x[:whole:ds]
    ys = y[:whole].reshape(-1, ds)
    out_x = np.empty(2 * xs.size + n - whole)
    out_y = np.empty_like(out_x)
    out_x[0:2 * xs.size:2] = xs
    out_x[1:2 * xs.size:2] = xs
    out_y[0:2 * xs.size:2] = ys.min(axis=1)  # NaN (a gap) propagates: the pen lifts
    out_y[1:2 * xs.size:2] = ys.max(axis=1)
    out_x[2 * xs.size:] = x[whole:]
    out_y[2 * xs.size:] = y[whole:]
    return out_x, out_y


def gap_count(ts_ms: IntArray, threshold_ms: float) -> int:
    if ts_ms.size < 2:
        return 0
    return int(np.count_nonzero(np.diff(ts_ms) > threshold_ms))


# ---------------------------------------------------------------- anomalies
DEFAULT_WINDOW = 60
DEFAULT_Z = 4.0
MIN_PERIODS = 20


@dataclass(frozen=True, slots=True)
class AnomalyFlags:
    """Flagged points of one series: where, what value, and how unusual (z)."""

    device_id: str
    metric: str
    ts_ms: IntArray
    value: FloatArray
    zscore: FloatArray
    baseline: FloatArray  # the rolling mean the point was compared with

    def __len__(self) -> int:
        return int(self.ts_ms.size)


def rolling_zscore(values: FloatArray, window: int, min_periods: int = MIN_PERIODS
                   ) -> tuple[FloatArray, FloatArray]:
    """z of each point against the mean and standard deviation of the up to
    ``window`` points *before* it (NaN until ``min_periods`` points exist, so a
    short aggregated series is still judged once it has some history).

    The current point is left out of its own baseline, otherwise one large spike
    inflates the deviation it is measured with and hides itself. Computed from
    cumulative sums, so the cost is O(n) whatever the window."""
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    z = np.full(n, np.nan)
    mean = np.full(n, np.nan)
    first = max(min(min_periods, window), 2)
    if window < 2 or n <= first:
        return z, mean
    # Shift by the first value: cumulative sums of squares of e.g. 1013 hPa
    # would otherwise lose the small variance to cancellation.
    shifted = x - x[0]
    c1 = np.concatenate(([0.0], np.cumsum(shifted)))
    c2 = np.concatenate(([0.0], np.cumsum(shifted * shifted)))
    idx = np.arange(first, n)
    lo = np.maximum(idx - window, 0)
    k = (idx - lo).astype(np.float64)
    s1 = c1[idx] - c1[lo]
    s2 = c2[idx] - c2[lo]
    m = s1 / k
    var = np.maximum(s2 / k - m * m, 0.0)
    std = np.sqrt(var * k / (k - 1))
    # A perfectly flat baseline (a stuck sensor, a constant setpoint) has no
    # spread; any change from it is unusual but not infinitely so.
    floor = np.maximum(np.abs(m + x[0]) * 1e-6, 1e-9)
    std = np.maximum(std, floor)
    z[idx] = (shifted[idx] - m) / std
    mean[idx] = m + x[0]
    return z, mean


def flag_anomalies(series: Series, *, window: int = DEFAULT_WINDOW,
                   threshold: float = DEFAULT_Z) -> AnomalyFlags:
    """Points whose rolling z-score is at least ``threshold`` in size.

    Raw series are judged point by point. Aggregated series are judged on each
    bucket's maximum and minimum (against the rolling baseline of maxima and
    minima), because a one-second spike moves a one-minute mean by very little
    but its maximum fully; the flagged value is that extreme. NaN values (gaps)
    are dropped first so they neither flag nor poison the window."""
    if threshold <= 0:
        raise ValueError(f"anomaly threshold {threshold} must be positive")
    columns = [series.value]
    if series.maximum is not None and series.minimum is not None:
        columns = [series.maximum, series.minimum]
    best_z: FloatArray | None = None
    best_v = best_m = np.empty(0)
    ts = series.ts_ms
    for column in columns:
        finite = np.isfinite(column)
        z, mean = rolling_zscore(column[finite], window)
        z_full = np.full(column.size, np.nan)
        m_full = np.full(column.size, np.nan)
        z_full[finite], m_full[finite] = z, mean
        if best_z is None:
            best_z, best_v, best_m = z_full, column.astype(np.float64), m_full
            continue
        stronger = np.abs(np.nan_to_num(z_full)) > np.abs(np.nan_to_num(best_z))
        best_z = np.where(stronger, z_full, best_z)
        best_v = np.where(stronger, column, best_v)
        best_m = np.where(stronger, m_full, best_m)
    assert best_z is not None
    hit = np.flatnonzero(np.abs(np.nan_to_num(best_z)) >= threshold)
    return AnomalyFlags(series.device_id, series.metric, ts[hit], best_v[hit], best_z[hit],
                        best_m[hit])


def suggested_limit(flag_value: float, baseline: float) -> tuple[str, float]:
    """Threshold-rule direction and limit for a flagged point: half-way between
    normal and the anomaly, so the same excursion would fire again but normal
    noise would not."""
    op = "above" if flag_value >= baseline else "below"
    limit = baseline + (flag_value - baseline) / 2.0
    return op, float(round(limit, 3))
