"""The live chart's buffers: order, duplicates, back-fill and trimming."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from core.model import Reading
from plugins.analytics.live_buffer import MAX_WINDOW_S, LiveBuffer

T0 = datetime(2026, 11, 26, tzinfo=UTC)
KEY = ("env-00001", "temperature")


def readings(seconds, value=1.0, device="env-00001", metric="temperature"):
    return [Reading(device, metric, T0 + timedelta(seconds=s), value + s) for s in seconds]


def test_only_tracked_series_are_kept_in_time_order():
    buffer = LiveBuffer([KEY])
    kept = buffer.add(readings([3, 1, 2]) + readings([1], metric="humidity"))
    assert kept == 3
    x, y = buffer.window(KEY, 0)
    assert (x - T0.timestamp()).tolist() == [1, 2, 3] and y.tolist() == [2, 3, 4]
    buffer.add(readings([0.5, 4]))  # a late one from a store-and-forward burst
    assert (buffer.window(KEY, 0)[0] - T0.timestamp()).tolist() == [0.5, 1, 2, 3, 4]


def test_backfill_and_live_copies_of_a_reading_appear_once():
    buffer = LiveBuffer([KEY])
    ts = (T0.timestamp() + np.arange(5.0)) * 1000
    buffer.add_history(KEY, ts.astype(np.int64), np.arange(5.0))
    buffer.add(readings([3, 4, 5]))  # 3 and 4 came from the store already
    x, _ = buffer.window(KEY, 0)
    assert (x - T0.timestamp()).tolist() == [0, 1, 2, 3, 4, 5]
    buffer.add_history(KEY, ts.astype(np.int64), np.arange(5.0))  # a second back-fill
    assert buffer.count(KEY) == 6


def test_window_and_trimming_beyond_a_day():
    buffer = LiveBuffer([KEY])
    step = 60.0
    n = int(2 * MAX_WINDOW_S / step)
    for start in range(0, n, 500):
        buffer.add(readings(np.arange(start, min(start + 500, n)) * step))
    x, _ = buffer.window(KEY, buffer.newest_s - 3600)
    assert x.size == 61
    assert buffer.count(KEY) <= MAX_WINDOW_S / step * 1.6  # older than a day is dropped
