"""A time chart shared by the Live and History views.

Several series overlaid on one plot, or stacked one plot per metric with the
time axes linked; a legend; a crosshair whose readout lists every series'
value under the mouse; alert-rule thresholds as dashed lines; alert events as
marks on the time axis; anomaly flags as rings. Curves use pyqtgraph's peak
downsampling and clip-to-view so a million points per series stay
interactive, and NaN rows (gaps) lift the pen. In live mode (``set_live``) the
curves are stroked into an image a few per event rather than in one paint.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
import pyqtgraph.exporters as pg_exporters
import shiboken6
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPainter, QTransform
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from console.theme import current_colors
from console.widgets.time_axis import TimeAxis
from core.ports.telemetry import Series
from plugins.analytics import export
from plugins.analytics.history import AlertMark, ThresholdLine
from plugins.analytics.series_math import AnomalyFlags

PALETTE = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#0891b2", "#db2777", "#65a30d",
           "#ea580c", "#4f46e5", "#0d9488")
SEVERITY_COLOURS = {"info": "#0891b2", "warning": "#d97706", "critical": "#dc2626"}
MAX_ALERT_MARKS = 300

Key = tuple[str, str]
# Live curves are stroked into an image in slices of about this long, one event
# each, so no single event of the Qt loop strokes all curves (see _LiveLayer).
SLICE_BUDGET_S = 0.006
SHOW_LATE_MS = 150  # a finished live image waits this long for the next frame's repaint


class Band(QGraphicsPathItem):
    """The min/max band of a bucketed series: one filled path with thin edges,
    built once per ``set_data`` straight from the arrays (one closed polygon
    per run of finite buckets, so gaps stay open).

    pyqtgraph's ``FillBetweenItem`` follows two edge curves and rebuilds its
    path whenever either changes: three items and ~4 path builds per band, and
    for a week of 10 devices overlaid (30 items) that was ~2/3 of drawing the
    chart (docs/benchmarks.md, "History reads")."""

    def __init__(self, colour: str) -> None:
        super().__init__()
        fill = pg.mkColor(colour)
        fill.setAlpha(45)
        self.setBrush(pg.mkBrush(fill))
        self.setPen(pg.mkPen(colour, width=0.6))
        self.x_data = self.low = self.high = np.empty(0)

    def set_data(self, x: npt.NDArray[np.float64], low: npt.NDArray[np.float64],
                 high: npt.NDArray[np.float64]) -> None:
        self.x_data, self.low, self.high = x, low, high
        finite = np.isfinite(x) & np.isfinite(low) & np.isfinite(high)
        edges = np.flatnonzero(np.diff(np.r_[0, finite.view(np.int8), 0]))
        runs = [(a, b) for a, b in zip(edges[0::2], edges[1::2], strict=True) if b - a > 1]
        if not runs:
            self.setPath(pg.QtGui.QPainterPath())
            return
        # Each run forwards along the low edge and back along the high one.
        index = np.concatenate([np.r_[np.arange(a, b), np.arange(b - 1, a - 1, -1)]
                                for a, b in runs])
        ys = np.concatenate([np.r_[low[a:b], high[a:b][::-1]] for a, b in runs])
        connect = np.ones(index.size, dtype=np.int32)
        connect[np.cumsum([2 * (b - a) for a, b in runs]) - 1] = 0
        path = pg.arrayToQPath(x[index], ys, connect=connect)
        path.setFillRule(Qt.FillRule.WindingFill)
        self.setPath(path)


@dataclass(frozen=True, slots=True)
class ChartSeries:
    """What one curve draws: x in epoch seconds, y with NaN at gaps, and for
    aggregated data the min/max band around the mean."""

    device_id: str
    metric: str
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64] | None = None
    high: npt.NDArray[np.float64] | None = None

    @property
    def key(self) -> Key:
        return (self.device_id, self.metric)

    @property
    def label(self) -> str:
        return f"{self.device_id} · {self.metric}"


class _LiveLayer(pg.GraphicsObject):
    """The live curves of one plot as one image, stroked a few curves per event.

    Stroking 50 curves of a few thousand points is 40-150 ms of QPainter work,
    and a Qt paint is one event: that was the live view's event-loop stall. In
    live mode the curves keep their place in the scene (legend, autorange,
    crosshair, export) but draw nothing themselves (``ItemHasNoContents``);
    this layer strokes their cached paths into a back image over several short
    events with the view transform of the moment the render began, then swaps
    it in. A paint blits the current image, mapped from the range it was drawn
    for to the view's present range so it never slides against the axes."""

    def __init__(self, plot: pg.PlotItem, curves: Callable[[], list[pg.PlotDataItem]]) -> None:
        super().__init__()
        self._vb = plot.getViewBox()
        self._curves = curves
        self.setParentItem(self._vb)  # view-box pixel coordinates, clipped by it
        self.setZValue(-1)  # under crosshair, thresholds, alert marks and flags
        self._image: QImage | None = None
        self._image_tr = QTransform()  # data -> pixels of the image shown
        self._back: QImage | None = None
        self._back_tr = QTransform()
        self._todo: list[pg.PlotDataItem] = []
        self._again = False
        self._unshown = False
        # A child of the layer: it dies with it when the plots are cleared (theme
        # switch, stacking, page closed) instead of outliving it unparented.
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._step)
        self.renders = 0
        self._vb.sigResized.connect(self.request)

    def boundingRect(self) -> QRectF:
        return QRectF(self._vb.boundingRect())

    def request(self) -> None:
        """Render anew soon (once the render in progress, if any, is swapped in)."""
        if not self.isVisible():
            return
        if self._todo or self._timer.isActive():
            self._again = True
            return
        self._begin()

    def stop(self) -> None:
        self._timer.stop()
        self._todo = []
        self._again = False
        self._image = self._back = None
        self.update()

    def _begin(self) -> None:
        size = self._vb.boundingRect().size().toSize()
        if size.width() < 2 or size.height() < 2:
            return
        self._back = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
        self._back.fill(Qt.GlobalColor.transparent)
        self._back_tr = self._vb.childGroup.transform()
        self._todo = [c for c in self._curves() if c.isVisible()]
        self._again = False
        self._timer.start()

    def _step(self) -> None:
        if self._back is None or not shiboken6.isValid(self):
            return
        deadline = time.perf_counter() + SLICE_BUDGET_S
        painter = QPainter(self._back)
        try:
            painter.setTransform(self._back_tr)
            while self._todo:
                item = self._todo.pop(0)
                curve = item.curve
                if curve.xData is not None and len(curve.xData):
                    painter.setRenderHint(QPainter.RenderHint.Antialiasing,
                                          bool(curve.opts["antialias"]))
                    painter.setPen(curve.opts["pen"])
                    painter.drawPath(curve.getPath())
                if time.perf_counter() > deadline:
                    break
        finally:
            painter.end()
        if self._todo:
            self._timer.start()
            return
        self._image, self._image_tr = self._back, self._back_tr
        self._back = None
        self.renders += 1
        # No repaint of its own: the next live frame repaints the view anyway
        # (a second full repaint per frame would double the paint events).
        # Only if no paint comes soon (the feed went quiet) is one asked for.
        self._unshown = True
        QTimer.singleShot(SHOW_LATE_MS, self._show_late)
        if self._again:
            self._begin()

    def _show_late(self) -> None:
        if self._unshown and shiboken6.isValid(self):
            self.update()

    def paint(self, p: QPainter, *args: object) -> None:
        self._unshown = False
        if self._image is None:
            return
        inverse, ok = self._image_tr.inverted()
        if not ok:
            return
        # image pixels -> data (as drawn) -> pixels of the present view range
        p.setTransform(inverse * self._vb.childGroup.transform() * p.transform())
        p.drawImage(0, 0, self._image)


class TimeChart(QWidget):
    """``set_series`` replaces what is drawn; curves for keys that stay are
    reused (``setData`` only), which is what keeps live redraws cheap."""

    crosshair_moved = Signal(float)
    user_moved_view = Signal()  # the user zoomed or panned (not our own setXRange)

    def __init__(self, parent: QWidget | None = None, *, antialias: bool = True) -> None:
        super().__init__(parent)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(current_colors().plot_background)
        self.readout = QLabel(" ")
        self.readout.setProperty("role", "secondary")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A long readout must wrap, not widen the chart's minimum size (which
        # would squeeze the device list beside it).
        self.readout.setWordWrap(True)
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        # What to do while the chart is empty (pick a device, widen the range).
        self.hint = QLabel("")
        self.hint.setProperty("role", "secondary")
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.hint)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.readout)
        self.stacked = False
        self.antialias = antialias
        self.live = False  # see set_live
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[Key, pg.PlotDataItem] = {}
        self._bands: dict[Key, Band] = {}
        self._data: dict[Key, ChartSeries] = {}
        self._extras: list[tuple[pg.PlotItem, pg.GraphicsObject]] = []
        self._anomaly_items: list[tuple[pg.PlotItem, pg.ScatterPlotItem]] = []
        self._crosshairs: dict[str, pg.InfiniteLine] = {}
        self._layers: dict[str, _LiveLayer] = {}
        self.source: list[Series] = []  # the store's answer behind the chart (CSV export)
        self.thresholds: list[ThresholdLine] = []
        self.alert_marks: list[AlertMark] = []
        self.anomalies: list[AnomalyFlags] = []
        self._colour_of: dict[Key, str] = {}
        self._device_colour: dict[str, str] = {}  # stacked: a device's colour in every panel
        self._mouse_proxy = pg.SignalProxy(self.graphics.scene().sigMouseMoved, rateLimit=30,
                                           slot=self._mouse_moved)
        self._ensure_plots([""])

    def set_hint(self, text: str) -> None:
        """A line above the chart saying why it is empty; "" hides it."""
        self.hint.setText(text)
        self.hint.setVisible(bool(text))

    # -- layout ------------------------------------------------------------------------
    def set_stacked(self, stacked: bool) -> None:
        if stacked == self.stacked:
            return
        self.stacked = stacked
        keep = list(self._data.values())
        self._reset_plots()
        self.set_series(keep)

    def _panel(self, metric: str) -> str:
        return metric if self.stacked else ""

    def _reset_plots(self) -> None:
        for layer in self._layers.values():
            layer.stop()
        self._layers.clear()
        self.graphics.clear()
        self.plots.clear()
        self.curves.clear()
        self._bands.clear()
        self._extras.clear()
        self._anomaly_items.clear()
        self._crosshairs.clear()

    def _ensure_plots(self, panels: Sequence[str]) -> None:
        if list(self.plots) == list(panels):
            return
        self._reset_plots()
        first: pg.PlotItem | None = None
        c = current_colors()
        for row, name in enumerate(panels):
            plot = self.graphics.addPlot(row=row, col=0, axisItems={"bottom": TimeAxis()})
            plot.showGrid(x=True, y=True, alpha=0.15)
            # The two settings that keep a million points interactive: draw only
            # what is in view, at most ~2 points (min and max) per pixel column.
            # Set on the plot, because PlotItem.addItem imposes its own settings
            # on every curve added to it.
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
            # A translucent background keeps the labels legible over the curves.
            backdrop = pg.mkColor(c.plot_background)
            backdrop.setAlpha(210)
            legend = plot.addLegend(offset=(8, 8), labelTextColor=c.plot_foreground,
                                    brush=pg.mkBrush(backdrop))
            # The legend only changes when series do; as a cached pixmap it costs
            # nothing per live frame (50 text labels would otherwise be re-laid out).
            legend.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            if name:
                plot.setLabel("left", name)
            plot.getViewBox().sigRangeChangedManually.connect(self.user_moved_view)
            if first is None:
                first = plot
            else:
                plot.setXLink(first)
            line = pg.InfiniteLine(angle=90, movable=False,
                                   pen=pg.mkPen(c.secondary, width=1,
                                                style=Qt.PenStyle.DotLine))
            line.setZValue(50)
            line.hide()
            plot.addItem(line, ignoreBounds=True)
            self._crosshairs[name] = line
            self.plots[name] = plot
            self._layers[name] = _LiveLayer(plot, functools.partial(self._curves_of, name))
            self._layers[name].setVisible(self.live)

    def _curves_of(self, panel: str) -> list[pg.PlotDataItem]:
        return [c for k, c in self.curves.items() if self._panel(k[1]) == panel]

    @property
    def main_plot(self) -> pg.PlotItem:
        return next(iter(self.plots.values()))

    # -- data --------------------------------------------------------------------------
    def colour(self, key: Key) -> str:
        """Overlaid: one colour per series. Stacked: one colour per device, the same
        in every panel; per series, a panel's curves took every n-th palette entry
        (n metrics) and landed on near twins (amber and orange on battery_v, green
        and lime on battery_pct), so a legend swatch matched two curves at once."""
        if self.stacked:
            device = key[0]
            if device not in self._device_colour:
                self._device_colour[device] = PALETTE[len(self._device_colour) % len(PALETTE)]
            return self._device_colour[device]
        if key not in self._colour_of:
            self._colour_of[key] = PALETTE[len(self._colour_of) % len(PALETTE)]
        return self._colour_of[key]

    def set_series(self, series: Sequence[ChartSeries], *, antialias: bool | None = None
                   ) -> None:
        """``antialias`` None keeps the chart's setting (the live view's chart is
        made without it: many curves repainted at 12 fps cost a third as much,
        and moving lines hide jaggies)."""
        if antialias is not None:
            self.antialias = antialias
        panels = list(dict.fromkeys(self._panel(s.metric) for s in series)) or [""]
        if self.stacked:
            panels = sorted(panels)
        self._ensure_plots(panels)
        wanted = {s.key for s in series}
        for key in [k for k in self.curves if k not in wanted]:
            self._remove_curve(key)
        for s in series:
            self._draw_one(s)
        self._data = {s.key: s for s in series}
        self._redraw_extras()

    def set_live(self, live: bool) -> None:
        """Live mode: the caller hands each curve exactly the points to draw (the
        window, peak-downsampled to the plot's width), so curves skip clip-to-view,
        auto downsampling and the dynamic range limit. A curve's path then only
        changes when its data does: scrolling the x axis or a new y range is a
        new transform for 50 cached paths, not 50 rebuilt ones. Off (paused, the
        History view): the plots' clip-to-view and peak downsampling apply, so
        zooming into full-resolution data stays fast and detailed. Live mode
        also hands the stroking of the curves to a ``_LiveLayer`` per plot, which
        spreads it over short events."""
        self.live = live
        for curve in self.curves.values():
            self._configure(curve)
        for layer in self._layers.values():
            layer.setVisible(live)
            if live:
                layer.request()
            else:
                layer.stop()

    def live_frame(self) -> None:
        """Live mode: the curves' data or the view moved; stroke them anew."""
        if self.live:
            for layer in self._layers.values():
                layer.request()

    def _configure(self, curve: pg.PlotDataItem) -> None:
        # Live: the layer strokes the curve; the curve stays for legend and bounds.
        curve.curve.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, self.live)
        if self.live:
            curve.setClipToView(False)
            curve.setDownsampling(ds=1, auto=False)
            curve.setDynamicRangeLimit(None)
        else:
            plot = next((p for p in self.plots.values() if curve in p.items), self.main_plot)
            curve.setClipToView(plot.clipToViewMode())
            curve.setDownsampling(*plot.downsampleMode())
            curve.setDynamicRangeLimit(1e6)  # pyqtgraph's default

    def update_xy(self, key: Key, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64],
                  *, drawn: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None
                  ) -> None:
        """The live path: new data for an existing curve, nothing else touched.
        ``drawn`` is what the curve draws when it differs from the data (peak
        downsampled); the crosshair readout and exports keep reading ``x, y``.
        The curve's path is built here rather than in the next paint, so the
        caller can spread the cost of many curves over several frames."""
        curve = self.curves.get(key)
        if curve is not None:
            curve.setData(*(drawn if drawn is not None else (x, y)))
            curve.curve.getPath()
            old = self._data.get(key)
            if old is not None:
                self._data[key] = ChartSeries(old.device_id, old.metric, x, y)

    def _draw_one(self, s: ChartSeries) -> None:
        plot = self.plots[self._panel(s.metric)]
        colour = self.colour(s.key)
        curve = self.curves.get(s.key)
        if curve is None or curve.getViewBox() is not plot.getViewBox():
            # Width 1 (cosmetic): Qt strokes wider antialiased pens many times slower.
            curve = pg.PlotDataItem(name=s.label, pen=pg.mkPen(colour, width=1),
                                    connect="finite", antialias=self.antialias)
            plot.addItem(curve)
            self._configure(curve)
            self.curves[s.key] = curve
        curve.setData(s.x, s.y)
        self._draw_band(s, plot, colour)

    def _draw_band(self, s: ChartSeries, plot: pg.PlotItem, colour: str) -> None:
        key = s.key
        if s.low is None or s.high is None:
            if key in self._bands:
                self._remove_band(key)
            return
        band = self._bands.get(key)
        if band is None or band not in plot.items:
            if band is not None:
                self._remove_band(key)
            band = Band(colour)
            plot.addItem(band)
            self._bands[key] = band
        band.set_data(s.x, s.low, s.high)

    def _remove_band(self, key: Key) -> None:
        band = self._bands.pop(key)
        for plot in self.plots.values():
            if band in plot.items:
                plot.removeItem(band)

    def _remove_curve(self, key: Key) -> None:
        curve = self.curves.pop(key)
        for plot in self.plots.values():
            if curve in plot.items:
                plot.removeItem(curve)
                plot.legend.removeItem(curve)
        if key in self._bands:
            self._remove_band(key)
        self._data.pop(key, None)

    def series(self) -> list[ChartSeries]:
        return list(self._data.values())

    # -- thresholds, alerts, anomalies ---------------------------------------------------
    def set_overlays(self, thresholds: Sequence[ThresholdLine] = (),
                     marks: Sequence[AlertMark] = ()) -> None:
        self.thresholds = list(thresholds)
        self.alert_marks = list(marks)[-MAX_ALERT_MARKS:]
        self._redraw_extras()

    def set_anomalies(self, flags: Sequence[AnomalyFlags]) -> None:
        self.anomalies = [f for f in flags if len(f)]
        for plot, item in self._anomaly_items:
            plot.removeItem(item)
        self._anomaly_items.clear()
        c = current_colors()
        # One ring item per plot, not per series: 50 live series would otherwise
        # be 50 scatter items to prepare and paint on every frame.
        per_plot: dict[str, list[AnomalyFlags]] = {}
        for f in self.anomalies:
            panel = self._panel(f.metric)
            if panel in self.plots and (f.device_id, f.metric) in self._data:
                per_plot.setdefault(panel, []).append(f)
        for panel, flags in per_plot.items():
            plot = self.plots[panel]
            item = pg.ScatterPlotItem(np.concatenate([f.ts_ms for f in flags]) / 1000.0,
                                      np.concatenate([f.value for f in flags]), symbol="o",
                                      size=11, pen=pg.mkPen(c.danger, width=2), brush=None)
            item.setZValue(40)
            plot.addItem(item)
            self._anomaly_items.append((plot, item))

    def _redraw_extras(self) -> None:
        for plot, item in self._extras:
            plot.removeItem(item)
        self._extras.clear()
        metrics_drawn = {k[1] for k in self._data}
        for line in self.thresholds:
            if line.metric not in metrics_drawn:
                continue
            plot = self.plots.get(self._panel(line.metric))
            if plot is None:
                continue
            colour = SEVERITY_COLOURS.get(line.severity, "#dc2626")
            item = pg.InfiniteLine(
                pos=line.limit, angle=0, movable=False,
                pen=pg.mkPen(colour, width=1.2, style=Qt.PenStyle.DashLine),
                label=f"{line.name} ({line.op} {line.limit:g})",
                labelOpts={"position": 0.02, "color": colour, "anchors": [(0, 1), (0, 1)]})
            plot.addItem(item, ignoreBounds=True)
            self._extras.append((plot, item))
        for mark in self.alert_marks:
            colour = SEVERITY_COLOURS.get(mark.severity, "#dc2626")
            for plot in self.plots.values():
                item = pg.InfiniteLine(pos=mark.ts_ms / 1000.0, angle=90, movable=False,
                                       pen=pg.mkPen(colour, width=1))
                item.setToolTip(f"{mark.device_id}: {mark.message}")
                plot.addItem(item, ignoreBounds=True)
                self._extras.append((plot, item))

    # -- crosshair ----------------------------------------------------------------------
    def values_at(self, x: float) -> list[tuple[str, float]]:
        """The value of every series at time ``x`` (nearest point), as the readout shows."""
        out: list[tuple[str, float]] = []
        for s in self._data.values():
            if s.x.size == 0:
                continue
            i = int(np.clip(np.searchsorted(s.x, x), 1, s.x.size - 1)) if s.x.size > 1 else 0
            if s.x.size > 1 and abs(s.x[i - 1] - x) <= abs(s.x[i] - x):
                i -= 1
            out.append((s.label, float(s.y[i])))
        return out

    def show_crosshair(self, x: float) -> None:
        for line in self._crosshairs.values():
            line.setValue(x)
            line.show()
        when = datetime.fromtimestamp(x).strftime("%Y-%m-%d %H:%M:%S")
        parts = [f"<span style='color:{self.colour(self._key_of(label))}'>■</span> "
                 f"{label}: <b>{value:.4g}</b>" if np.isfinite(value) else f"{label}: gap"
                 for label, value in self.values_at(x)]
        self.readout.setText(f"{when} &nbsp; " + " &nbsp; ".join(parts))
        self.crosshair_moved.emit(x)

    def _key_of(self, label: str) -> Key:
        for key, s in self._data.items():
            if s.label == label:
                return key
        return ("", "")

    def _mouse_moved(self, event: tuple[QPointF]) -> None:
        pos = event[0]
        for plot in self.plots.values():
            if plot.sceneBoundingRect().contains(pos):
                x = plot.getViewBox().mapSceneToView(pos).x()
                self.show_crosshair(float(x))
                return

    # -- export --------------------------------------------------------------------------
    @contextmanager
    def _curves_painting(self) -> Iterator[None]:
        """Exports render the scene at their own size: live curves draw
        themselves for it instead of the layer's screen-sized image."""
        live = self.live
        if live:
            for curve in self.curves.values():
                curve.curve.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, False)
            for layer in self._layers.values():
                layer.hide()
        try:
            yield
        finally:
            if live:
                for curve in self.curves.values():
                    curve.curve.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, True)
                for layer in self._layers.values():
                    layer.show()
                self.live_frame()

    @property
    def live_renders(self) -> int:
        """Complete live images swapped in so far (all panels)."""
        return sum(layer.renders for layer in self._layers.values())

    def export_image(self, path: Path) -> None:
        """PNG or SVG by suffix, of the whole chart (all stacked panels)."""
        with self._curves_painting():
            self._export_image(path)

    def _export_image(self, path: Path) -> None:
        suffix = path.suffix.lower()
        if suffix == ".svg":
            self._export_svg(path)
        elif suffix == ".png":
            exporter = pg_exporters.ImageExporter(self.graphics.ci)
            exporter.parameters()["width"] = max(int(self.graphics.width()), 800)
            exporter.export(str(path))
        else:
            raise ValueError(f"image format {suffix or '(none)'} is not one of .png, .svg")
        if not path.exists():
            raise OSError(f"nothing was written to {path}")

    def _export_svg(self, path: Path) -> None:
        """Qt's own SVG painter rather than pyqtgraph's SVGExporter, which fails
        on the paths of curves with gaps (NaN rows) in pyqtgraph 0.13-0.14."""
        size = self.graphics.size()
        generator = QSvgGenerator()
        generator.setFileName(str(path))
        generator.setSize(size)
        generator.setViewBox(QRect(0, 0, size.width(), size.height()))
        generator.setTitle("Smart IoT Fleet Console chart")
        painter = QPainter(generator)
        try:
            self.graphics.render(painter)
        finally:
            painter.end()

    def export_data(self, path: Path) -> int:
        """CSV (or JSON by suffix) of the store's answer behind the chart: raw
        readings or buckets with min/avg/max/count, as shown."""
        fmt = "json" if path.suffix.lower() == ".json" else "csv"
        with path.open("w", encoding="utf-8", newline="") as out:
            return export.write(self.source, out, fmt)
