"""Live charts: chosen devices and metrics scrolling in a 1 minute to 24 hour window.

Readings arrive through the console's LiveBridge (≤ 30 batches a second
whatever the message rate) into numpy buffers; a separate frame timer redraws
at most ``FPS`` times a second and only when something changed. The redraw
cost therefore depends on the points in view, never on how fast devices
publish, and it is spread over short events: curve data is refreshed within a
time budget per frame (peak-downsampled to the plot's width), and the chart
strokes the curves into an image a few at a time (see ``TimeChart.set_live``),
so the Qt event loop never waits for a whole redraw of 50 curves. Opening a
series back-fills the window from the telemetry store so the chart does not
start empty.

Space pauses and resumes; zooming or panning pauses too (resuming jumps back
to the newest data).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QLabel,
    QPushButton,
    QWidget,
)

from console.bridge import LiveBridge
from console.widgets.background import BackgroundCall
from core.model.analytics import AlertMark, HistoryRequest, ThresholdLine
from core.model.events import AlertChanged, FleetEvent, TelemetryReceived
from core.model.timeutil import to_epoch_ms
from core.ports.backend import Backend
from core.ports.fleet_api import FleetApi
from core.ports.live import LiveFeed
from core.ports.telemetry import Series
from plugins.analytics.live_buffer import LiveBuffer, SeriesKey
from plugins.analytics.series_math import (
    AnomalyFlags,
    flag_anomalies,
    peak_downsample,
    with_local_gaps,
)
from plugins.analytics.widgets.anomaly_panel import AnomalyPanel
from plugins.analytics.widgets.chart_files import ChartFileActions
from plugins.analytics.widgets.chart_layout import lay_out_chart_view
from plugins.analytics.widgets.series_picker import SeriesPicker
from plugins.analytics.widgets.time_chart import ChartSeries, TimeChart

FPS = 12
# Curve data updated per frame at most this long (one curve more may finish):
# the curves not reached keep their previous points and come first next frame,
# so no frame is one long event whatever the number of series.
FRAME_BUDGET_S = 0.008
ANOMALY_EVERY_S = 2.0
WINDOWS: tuple[tuple[str, int], ...] = (
    ("1 minute", 60), ("5 minutes", 300), ("15 minutes", 900), ("1 hour", 3600),
    ("6 hours", 6 * 3600), ("24 hours", 24 * 3600),
)
DEFAULT_WINDOW_INDEX = 1
LIVE_HINT = "Pick one or more devices on the left, then a metric, to follow them live."


class LiveView(QWidget):
    frame_drawn = Signal()

    def __init__(self, api_of: Callable[[], FleetApi], parent: QWidget | None = None,
                 *, fps: int = FPS) -> None:
        super().__init__(parent)
        self._api_of = api_of
        self._background = BackgroundCall(self)
        self.buffer = LiveBuffer()
        self.bridge: LiveBridge | None = None
        self._feed: LiveFeed | None = None
        self._unfocus: Callable[[], None] | None = None
        self.paused = False
        self._dirty = False
        # Curves whose data changed since they were last drawn, oldest first.
        self._stale: dict[SeriesKey, None] = {}
        self._last_flags = 0.0
        self._flag_todo: list[SeriesKey] = []  # re-flagging in progress (see _flag_some)
        self._flag_done: list[AnomalyFlags] = []
        self._y_extent: dict[SeriesKey, tuple[float, float]] = {}  # per curve, in its window
        self._y_range: dict[str, tuple[float, float]] = {}  # per panel, as set
        self.frames_drawn = 0
        self.curve_updates = 0  # curves given new data (frames times curves when all keep up)
        self.readings_seen = 0
        self.thresholds: list[ThresholdLine] = []
        self.marks: list[AlertMark] = []

        self.picker = SeriesPicker(api_of)
        self.chart = TimeChart(antialias=False)
        self.chart.set_live(True)
        self.chart.set_hint(LIVE_HINT)
        self.anomalies = AnomalyPanel(api_of)
        self.window_combo = QComboBox()
        for label, seconds in WINDOWS:
            self.window_combo.addItem(label, seconds)
        self.window_combo.setCurrentIndex(DEFAULT_WINDOW_INDEX)
        self.stacked = QCheckBox("Stack metrics")
        self.flag_box = QCheckBox("Flag anomalies")
        self.flag_box.setChecked(True)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Freeze the chart to read it; data keeps arriving (Space)")
        self.files = ChartFileActions(self.chart, "live", self, prepare=self.prepare_export)
        self.status = QLabel("")
        self.status.setProperty("role", "secondary")

        lay_out_chart_view(
            self, [QLabel("Window"), self.window_combo, self.stacked, self.flag_box],
            [self.status, self.pause_button, self.files.csv_button, self.files.image_button],
            self.picker, self.chart, self.anomalies)

        self.frame_timer = QTimer(self)
        self.frame_timer.setInterval(max(1000 // max(fps, 1), 16))
        self.frame_timer.timeout.connect(self.draw_frame)
        self.frame_timer.start()

        self.picker.changed.connect(self._selection_changed)
        self.window_combo.currentIndexChanged.connect(self._window_changed)
        self.stacked.toggled.connect(self._stack_toggled)
        self.flag_box.toggled.connect(self._flags_toggled)
        self.anomalies.settings_changed.connect(self._refresh_flags)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.chart.user_moved_view.connect(lambda: self.set_paused(True))
        self.files.exported.connect(lambda path, what: self.status.setText(
            f"Saved {what} to {path}"))
        self.files.failed.connect(self.status.setText)
        # On the chart, not the whole view: Space must still type in the device filter.
        space = QShortcut(QKeySequence(Qt.Key.Key_Space), self.chart)
        space.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        space.activated.connect(self.toggle_pause)

    # -- feed -----------------------------------------------------------------------------
    def attach(self, backend: Backend) -> None:
        """Subscribe to the backend's live feed (called once the backend exists)."""
        if backend.live is None:
            self.status.setText(f"Live data is not available on the {backend.name} backend")
            return
        if self.bridge is None:
            self._feed = backend.live
            self.bridge = LiveBridge(backend.live, parent=self)
            self.bridge.batch.connect(self.on_events)
            self._focus_feed()

    def on_events(self, events: list[FleetEvent]) -> None:
        """A coalesced batch from the bridge: append, mark dirty, draw later."""
        # Only the charted devices' messages are unpacked: at 10,000 devices a
        # batch holds thousands of messages of which a chart follows a handful.
        tracked = {k[0] for k in self.buffer.keys}
        readings = [r for e in events
                    if isinstance(e, TelemetryReceived) and e.device_id in tracked
                    for r in e.readings]
        if readings:
            kept = self.buffer.add(readings)
            self.readings_seen += kept
            if kept:
                self._invalidate()
        for e in events:
            if not isinstance(e, AlertChanged):
                continue
            alert = e.alert
            if alert.device_id in tracked and alert.state.value == "active":
                self.marks.append(AlertMark(alert.device_id, to_epoch_ms(alert.created_at),
                                            alert.severity.value, alert.message))
                self.chart.set_overlays(self.thresholds, self.marks)

    # -- selection ---------------------------------------------------------------------------
    def window_s(self) -> int:
        return int(self.window_combo.currentData())

    def keys(self) -> list[SeriesKey]:
        return [(d, m) for d in self.picker.selected_devices()
                for m in self.picker.selected_metrics()]

    def _selection_changed(self) -> None:
        keys = self.keys()
        self.chart.set_hint("" if keys else LIVE_HINT)
        self.buffer.track(keys)
        self._focus_feed()
        self._y_extent = {k: v for k, v in self._y_extent.items() if k in set(keys)}
        self.marks = [m for m in self.marks if m.device_id in {k[0] for k in keys}]
        self.chart.set_series([ChartSeries(d, m, np.empty(0), np.empty(0)) for d, m in keys])
        self._autorange_y()
        self._invalidate()
        self._backfill(keys)

    def _window_changed(self) -> None:
        self._backfill(self.keys())
        self._invalidate()

    def _stack_toggled(self, on: bool) -> None:
        self.chart.set_stacked(on)
        self._autorange_y()
        self._invalidate()

    def _backfill(self, keys: list[SeriesKey]) -> None:
        """Readings from before the view opened, through the history use case,
        off the GUI thread."""
        if not keys:
            return
        api_of = self._api_of
        window = timedelta(seconds=self.window_s())
        devices = tuple(dict.fromkeys(d for d, _ in keys))
        metrics = tuple(dict.fromkeys(m for _, m in keys))

        def load() -> tuple[list[Series], list[ThresholdLine]]:
            analytics = api_of().analytics
            end = datetime.now(UTC)
            request = HistoryRequest(devices, metrics, end - window, end)
            series = analytics.history(request, overlays=False).series
            return series, analytics.thresholds(sorted(metrics))

        def done(result: tuple[list[Series], list[ThresholdLine]]) -> None:
            series, lines = result
            for s in series:
                self.buffer.add_history((s.device_id, s.metric), s.ts_ms, s.value)
            self.thresholds = lines
            self.chart.set_overlays(self.thresholds, self.marks)
            self._invalidate()

        self._background.start(load, done, lambda exc: self.status.setText(
            f"Could not load recent history: {exc}"), key="backfill")

    # -- drawing ----------------------------------------------------------------------------
    def toggle_pause(self) -> None:
        self.set_paused(not self.paused)

    def set_paused(self, paused: bool) -> None:
        was = self.paused
        self.paused = paused
        self.pause_button.setText("Resume" if paused else "Pause")
        self.status.setText("Paused: zoom and pan freely; Space resumes" if paused else "")
        if paused and not was:
            # Full resolution to zoom into, with the plots' clip-to-view and
            # peak downsampling doing the work per view change (one redraw).
            self.chart.set_live(False)
            self._invalidate()
            newest = self.buffer.newest_s or time.time()
            self._update_curves(newest - self.window_s(), budget_s=None, full=True)
        if not paused:
            # Every curve back to its downsampled window in one go (a user
            # action), so no curve is left drawing full resolution unclipped.
            self.chart.set_live(True)
            self._invalidate()
            self._autorange_y()
            newest = self.buffer.newest_s or time.time()
            self.chart.main_plot.setXRange(newest - self.window_s(), newest, padding=0.0)
            self._update_curves(newest - self.window_s(), budget_s=None)
            self.draw_frame()

    def _invalidate(self) -> None:
        """Every curve needs its data again (new readings, window, layout)."""
        self._dirty = True
        for key in self.buffer.keys:
            self._stale.setdefault(key)

    def draw_frame(self) -> None:
        """Called by the frame timer; cheap when nothing changed or paused.

        The x range moves every frame; curve data is refreshed oldest first for
        at most FRAME_BUDGET_S (at least one curve), so 50 curves take a few
        frames between them instead of one long event; the chart's live layer
        then strokes the curves in short slices and swaps the image in."""
        if self.paused or not self._dirty:
            return
        newest = self.buffer.newest_s or time.time()
        since = newest - self.window_s()
        self.chart.main_plot.setXRange(since, newest, padding=0.0)
        self._update_curves(since, budget_s=FRAME_BUDGET_S)
        self._dirty = bool(self._stale)
        self._follow_y()
        self.chart.live_frame()
        if self.flag_box.isChecked() and time.monotonic() - self._last_flags > ANOMALY_EVERY_S:
            self._flag_some(time.perf_counter() + FRAME_BUDGET_S)
        self.frames_drawn += 1
        self.frame_drawn.emit()

    def _update_curves(self, since: float, *, budget_s: float | None,
                       full: bool = False) -> None:
        """New data for stale curves, oldest first, until the budget is spent
        (``budget_s`` None: all of them); peak-downsampled to the plot's width
        unless ``full`` (paused, for zooming in)."""
        deadline = time.perf_counter() + budget_s if budget_s is not None else None
        width = max(int(self.chart.main_plot.getViewBox().width()), 200)
        tracked = set(self.buffer.keys)
        while self._stale:
            key = next(iter(self._stale))
            del self._stale[key]
            if key not in self.chart.curves or key not in tracked:
                continue
            x, y = self.buffer.window(key, since)
            x, y = with_local_gaps(x, y)
            # About two points (min and max) per pixel column is all a line can show.
            drawn = None if full else peak_downsample(x, y, 2 * width)
            self.chart.update_xy(key, x, y, drawn=drawn)
            self.curve_updates += 1
            finite = y[np.isfinite(y)] if y.size else y
            if finite.size:
                self._y_extent[key] = (float(finite.min()), float(finite.max()))
            else:
                self._y_extent.pop(key, None)
            if deadline is not None and time.perf_counter() > deadline:
                break

    def _autorange_y(self) -> None:
        """y follows the data in view (until the user zooms, which pauses): set
        by ``_follow_y`` from the curves' extents, with some slack, rather than
        by pyqtgraph's autorange, which re-measures all curves on every paint
        and moves the axis (relayout, new tick labels) whenever a new extreme
        arrives."""
        for plot in self.chart.plots.values():
            plot.disableAutoRange(axis="y")
        self._y_range.clear()

    def _follow_y(self) -> None:
        extents: dict[str, tuple[float, float]] = {}
        for (_device, metric), (lo, hi) in self._y_extent.items():
            panel = metric if self.chart.stacked else ""
            old = extents.get(panel)
            extents[panel] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
        for panel, (lo, hi) in extents.items():
            plot = self.chart.plots.get(panel)
            if plot is None:
                continue
            span = max(hi - lo, abs(hi) * 1e-3, 1e-9)
            have = self._y_range.get(panel)
            # Move only when data leaves the range or fills less than half of it.
            if have is None or lo < have[0] or hi > have[1] or span < (have[1] - have[0]) / 2.5:
                have = (lo - 0.15 * span, hi + 0.15 * span)
                self._y_range[panel] = have
                plot.setYRange(*have, padding=0.0)

    def _flags_toggled(self, on: bool) -> None:
        if on:
            self._refresh_flags()
        else:
            self.chart.set_anomalies([])
            self.anomalies.set_flags([])

    def _flag_some(self, deadline: float) -> None:
        """The periodic re-flagging, a few series per frame: 50 series at once
        are ~50 ms of rolling statistics in one event. Shown when all are done."""
        if not self._flag_todo and not self._flag_done:
            self._flag_todo = list(self.buffer.keys)
        newest = self.buffer.newest_s or time.time()
        while self._flag_todo:
            d, m = self._flag_todo.pop(0)
            x, y = self.buffer.window((d, m), newest - self.window_s())
            series = Series(d, m, np.round(x * 1000).astype(np.int64), y.copy())
            self._flag_done.append(flag_anomalies(
                series, window=self.anomalies.window_points.value(),
                threshold=self.anomalies.threshold.value()))
            if time.perf_counter() > deadline:
                return
        flags, self._flag_done = self._flag_done, []
        self._last_flags = time.monotonic()
        self.chart.set_anomalies(flags)
        self.anomalies.set_flags(flags)

    def _refresh_flags(self) -> None:
        self._flag_todo, self._flag_done = [], []
        self._last_flags = time.monotonic()
        flags: list[AnomalyFlags] = []
        if self.flag_box.isChecked():
            flags = [flag_anomalies(s, window=self.anomalies.window_points.value(),
                                    threshold=self.anomalies.threshold.value())
                     for s in self.visible_series()]
        self.chart.set_anomalies(flags)
        self.anomalies.set_flags(flags)

    def visible_series(self) -> list[Series]:
        """The raw readings in the window, as a store would return them (CSV export)."""
        newest = self.buffer.newest_s or time.time()
        out: list[Series] = []
        for d, m in self.buffer.keys:
            x, y = self.buffer.window((d, m), newest - self.window_s())
            out.append(Series(d, m, np.round(x * 1000).astype(np.int64), y.copy()))
        return out

    def prepare_export(self) -> None:
        self.chart.source = self.visible_series()

    def _focus_feed(self) -> None:
        """Every reading of the charted devices (LiveFeed.focus): a feed with
        thousands of devices may pass on only the table's columns for others."""
        if self._unfocus is not None:
            self._unfocus()
            self._unfocus = None
        devices = sorted({d for d, _ in self.buffer.keys})
        if self._feed is not None and devices:
            self._unfocus = self._feed.focus(devices)

    def close_feed(self) -> None:
        self.frame_timer.stop()
        if self._unfocus is not None:
            self._unfocus()
            self._unfocus = None
        if self.bridge is not None:
            self.bridge.close()
