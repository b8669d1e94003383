"""Growable numpy columns per (device, metric) for the live chart.

Appends happen once per bridge batch (≤ 30 Hz) with all readings of that batch,
so the cost per batch is one ``np.concatenate``-free copy into spare capacity
per series, never a Python list that grows per message. Readings older than
the longest window are dropped in bulk when a series runs out of room.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from core.model import Reading
from core.model.timeutil import to_epoch_ms

SeriesKey = tuple[str, str]
MAX_WINDOW_S = 24 * 3600.0


@dataclass
class _Column:
    x: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(1024))
    y: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(1024))
    n: int = 0

    def extend(self, xs: npt.NDArray[np.float64], ys: npt.NDArray[np.float64],
               keep_after: float) -> None:
        if self.n and xs.size and xs[0] <= self.x[self.n - 1]:
            # A reading both back-filled from the store and delivered live (the
            # hub stores, then publishes) must appear once, as in the store.
            have = self.x[:self.n]
            at = np.minimum(np.searchsorted(have, xs), self.n - 1)
            fresh = have[at] != xs
            xs, ys = xs[fresh], ys[fresh]
        if self.n and xs.size and xs[0] < self.x[self.n - 1]:
            # Out-of-order delivery (store-and-forward bursts): merge, keep x sorted,
            # because the chart's clip-to-view bisects x.
            allx = np.concatenate((self.x[:self.n], xs))
            ally = np.concatenate((self.y[:self.n], ys))
            order = np.argsort(allx, kind="stable")
            self.x, self.y, self.n = allx[order], ally[order], allx.size
            self._reserve(0, keep_after)
            return
        self._reserve(xs.size, keep_after)
        self.x[self.n:self.n + xs.size] = xs
        self.y[self.n:self.n + ys.size] = ys
        self.n += xs.size

    def _reserve(self, extra: int, keep_after: float) -> None:
        if self.n + extra <= self.x.size:
            return
        # Drop what no window can show any more before deciding to grow.
        first = int(np.searchsorted(self.x[:self.n], keep_after))
        live = self.n - first
        size = max(1024, self.x.size)
        while live + extra > size * 3 // 4:
            size *= 2
        x = np.empty(size)
        y = np.empty(size)
        x[:live] = self.x[first:self.n]
        y[:live] = self.y[first:self.n]
        self.x, self.y, self.n = x, y, live


class LiveBuffer:
    """x are epoch seconds (what pyqtgraph's DateAxisItem expects), y values."""

    def __init__(self, keys: Iterable[SeriesKey] = ()) -> None:
        self._columns: dict[SeriesKey, _Column] = {k: _Column() for k in keys}
        self.newest_s = 0.0

    @property
    def keys(self) -> list[SeriesKey]:
        return list(self._columns)

    def track(self, keys: Iterable[SeriesKey]) -> None:
        """Follow exactly these series (new ones start empty, others are dropped)."""
        wanted = list(dict.fromkeys(keys))
        self._columns = {k: self._columns.get(k) or _Column() for k in wanted}

    def add_history(self, key: SeriesKey, ts_ms: npt.NDArray[np.int64],
                    values: npt.NDArray[np.float64]) -> None:
        """Back-fill from the store (readings from before the view opened)."""
        column = self._columns.get(key)
        if column is None or ts_ms.size == 0:
            return
        xs = ts_ms.astype(np.float64) / 1000.0
        if column.n:
            keep = xs < column.x[0]
            xs, values = xs[keep], values[keep]
        merged_x = np.concatenate((xs, column.x[:column.n]))
        merged_y = np.concatenate((np.asarray(values, dtype=np.float64), column.y[:column.n]))
        column.x, column.y, column.n = merged_x, merged_y, merged_x.size
        column.extend(np.empty(0), np.empty(0), merged_x[-1] - MAX_WINDOW_S)
        self.newest_s = max(self.newest_s, float(merged_x[-1]))

    def add(self, readings: Iterable[Reading]) -> int:
        """Append the readings of tracked series; returns how many were kept."""
        grouped: dict[SeriesKey, tuple[list[float], list[float]]] = {}
        columns = self._columns
        for r in readings:
            key = (r.device_id, r.metric)
            if key not in columns:
                continue
            xs, ys = grouped.setdefault(key, ([], []))
            xs.append(to_epoch_ms(r.ts) / 1000.0)
            ys.append(r.value)
        kept = 0
        for key, (xs, ys) in grouped.items():
            x = np.asarray(xs, dtype=np.float64)
            if x.size > 1 and np.any(np.diff(x) < 0):
                order = np.argsort(x, kind="stable")
                x, y = x[order], np.asarray(ys, dtype=np.float64)[order]
            else:
                y = np.asarray(ys, dtype=np.float64)
            newest = float(x[-1]) if x[-1] > self.newest_s else self.newest_s
            columns[key].extend(x, y, newest - MAX_WINDOW_S)
            self.newest_s = newest
            kept += x.size
        return kept

    def window(self, key: SeriesKey, since_s: float) -> tuple[npt.NDArray[np.float64],
                                                             npt.NDArray[np.float64]]:
        """Views (no copy) of the points at or after ``since_s``."""
        column = self._columns[key]
        x = column.x[:column.n]
        first = int(np.searchsorted(x, since_s))
        return x[first:], column.y[first:column.n]

    def count(self, key: SeriesKey) -> int:
        return self._columns[key].n
