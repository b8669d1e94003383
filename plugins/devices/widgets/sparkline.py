"""A tiny line chart without axes: the last 15 minutes of one metric.

A plain widget that draws one path, not a pyqtgraph plot: a device's detail
shows a dozen of these, and every message of the device updates all of them at
once. As plot widgets (a graphics view, a scene, a view box fitting its range,
hidden axes) the dozen paints held the window for 30-70 ms each second beside a
10,000-device fleet (bench/console_bench.py's stall causes, 2026-12-06); the
path, made in numpy and pyqtgraph's ``arrayToQPath`` when the data or the size
changes, costs a fill and one ``drawPath`` a paint (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

from console.theme import current_colors
from core.model.timeutil import utcnow
from core.ports.fleet_api.devices import SPARKLINE_WINDOW

SPARK_POINTS = 2000  # points kept per sparkline
MARGIN_PX = 2  # above and below the line, so its stroke is not cut
PEN_WIDTH = 1.6  # as two one-pixel strokes (see paintEvent)


class Sparkline(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedHeight(34)
        self.setMinimumWidth(120)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._x = np.empty(0, dtype=np.float64)
        self._y = np.empty(0, dtype=np.float64)
        self._path: QPainterPath | None = None
        self._path_size = QSize()

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
        self._path = None  # made again at the next paint, once for any number of updates
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:
        colors = current_colors()  # read each paint: a theme switch repaints
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(colors.surface))
        if self._path is None or self._path_size != self.size():
            self._path, self._path_size = line_path(self._x, self._y, self.width(),
                                                    self.height()), self.size()
        if self._path is not None:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            # Two one-pixel strokes 0.6 px apart, for a 1.6 px line: Qt strokes
            # a one-pixel pen on its fast path (0.02 ms for 560 points), any
            # wider one through its stroker (0.6 ms).
            shift = (PEN_WIDTH - 1.0) / 2
            painter.setPen(QPen(QColor(colors.accent), 1.0))
            painter.translate(0.0, -shift)
            painter.drawPath(self._path)
            painter.translate(0.0, 2 * shift)
            painter.drawPath(self._path)
        painter.end()


def line_path(x: np.ndarray, y: np.ndarray, width: int, height: int
              ) -> QPainterPath | None:
    """The series scaled to fill ``width`` x ``height`` (less the margins), its
    silences left as holes (:func:`with_gaps`); None when nothing is drawable."""
    finite = np.isfinite(y)
    if not finite.any():
        return None
    gx, gy = with_gaps(x, y)
    lo, hi = float(np.nanmin(gy)), float(np.nanmax(gy))
    span_x = float(gx[-1] - gx[0])
    px = ((gx - gx[0]) / span_x * (width - 1)) if span_x > 0 else np.full(gx.shape,
                                                                         (width - 1) / 2)
    inner = height - 1 - 2 * MARGIN_PX
    # a flat series through the middle row's centre, a whole pixel of stroke
    py = (MARGIN_PX + (hi - gy) / (hi - lo) * inner) if hi > lo else np.full(gy.shape,
                                                                             (height - 1) / 2)
    py = np.where(np.isfinite(gy), py, np.nan)
    px, py = per_column(px, py, width)
    path: QPainterPath = pg.arrayToQPath(px, py, connect="finite")
    return path


def per_column(px: np.ndarray, py: np.ndarray, width: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """At most two points a pixel column, its lowest and highest: what is
    drawn is the same with fewer segments to stroke (a 15-minute series at
    1 Hz is 900 points for some 200 columns). A column holding a silence's
    NaN stays a hole (``minimum`` keeps NaN)."""
    if px.size <= 2 * width:
        return px, py
    column = np.floor(px).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, column[1:] != column[:-1]])
    low, high = np.minimum.reduceat(py, starts), np.maximum.reduceat(py, starts)
    centre = column[starts] + 0.5
    return np.repeat(centre, 2), np.column_stack([high, low]).ravel()


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
