"""A tiny line chart without axes: the last 15 minutes of one metric."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from console.theme import current_colors
from core.model.timeutil import utcnow
from core.ports.fleet_api.devices import SPARKLINE_WINDOW

SPARK_POINTS = 2000  # points kept per sparkline


class Sparkline(pg.PlotWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        colors = current_colors()
        super().__init__(parent, background=colors.surface)
        self.setFixedHeight(34)
        self.setMinimumWidth(120)
        self.hideAxis("left")
        self.hideAxis("bottom")
        self.setMouseEnabled(False, False)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.getPlotItem().setContentsMargins(0, 2, 0, 2)
        self._curve = self.plot(pen=pg.mkPen(colors.accent, width=1.6), connect="finite")
        self._x = np.empty(0, dtype=np.float64)
        self._y = np.empty(0, dtype=np.float64)

    def set_series(self, ts_ms: np.ndarray, values: np.ndarray) -> None:
        self._x = np.asarray(ts_ms, dtype=np.float64)[-SPARK_POINTS:] / 1000.0
        self._y = np.asarray(values, dtype=np.float64)[-SPARK_POINTS:]
        self._redraw()

    def append(self, points: Iterable[tuple[float, float]]) -> None:
        pts = list(points)
        if not pts:
            return
        xs, ys = zip(*pts, strict=True)
        self._x = np.concatenate([self._x, np.asarray(xs)])[-SPARK_POINTS:]
        self._y = np.concatenate([self._y, np.asarray(ys)])[-SPARK_POINTS:]
        cutoff = utcnow().timestamp() - SPARKLINE_WINDOW.total_seconds()
        keep = self._x >= cutoff
        self._x, self._y = self._x[keep], self._y[keep]
        self._redraw()

    def point_count(self) -> int:
        return int(self._x.shape[0])

    def _redraw(self) -> None:
        self._curve.setData(*with_gaps(self._x, self._y))


def with_gaps(x: np.ndarray, y: np.ndarray, factor: float = 3.0
              ) -> tuple[np.ndarray, np.ndarray]:
    """A NaN after every silence longer than ``factor`` times the typical
    (median) interval, so a reboot or a restart shows as a hole in the line
    rather than a straight stroke bridging it (which would look like data)."""
    if x.size < 3:
        return x, y
    d = np.diff(x)
    gaps = np.flatnonzero(d > factor * max(float(np.median(d)), 1e-9))
    if gaps.size == 0:
        return x, y
    return (np.insert(x, gaps + 1, (x[gaps] + x[gaps + 1]) / 2),
            np.insert(np.asarray(y, dtype=np.float64), gaps + 1, np.nan))
