"""Fleet dashboard: the Smart_IOT dashboard numbers at a glance, and the fleet over time.

Charts rather than tables, because a supervisor scanning for a type that went
dark, a rising alert rate or a site full of red dots reads shapes faster than
rows. Clicking a device on the map or in the top-N chart opens its detail page.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from console.theme import current_colors
from console.widgets.background import BackgroundCall
from console.widgets.time_axis import TimeAxis
from core.context import AppContext
from core.model import Severity
from core.model.analytics import ONLINE_BUCKET_MS
from core.model.analytics import FleetOverview as DashboardData
from plugins.analytics.widgets.device_link import open_device_detail
from plugins.analytics.widgets.time_chart import SEVERITY_COLOURS

CARDS = (
    ("total", "Devices", "#3b82f6"),
    ("online", "Online", "#16a34a"),
    ("offline", "Offline", "#6b7280"),
    ("warning", "Warning", "#d97706"),
    ("error", "Critical", "#dc2626"),  # a critical open alert (fleet_health)
)
STATUS_COLOURS = {"online": "#16a34a", "offline": "#6b7280", "warning": "#d97706",
                  "error": "#dc2626", "decommissioned": "#a0a8b3"}


class StatCard(QFrame):
    def __init__(self, title: str, colour: str) -> None:
        super().__init__()
        self.setObjectName("statCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.value_label = QLabel("-")
        self.value_label.setStyleSheet(f"font-size: 26px; font-weight: 600; color: {colour};")
        title_label = QLabel(title)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.addWidget(self.value_label)
        layout.addWidget(title_label)

    def set_value(self, value: int) -> None:
        self.value_label.setText(f"{value:,}")


def _plot(title: str, *, dates: bool = False) -> pg.PlotWidget:
    axis = {"bottom": TimeAxis()} if dates else None
    plot = pg.PlotWidget(title=title, axisItems=axis)
    plot.setBackground(current_colors().plot_background)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.showGrid(y=True, alpha=0.2)
    plot.setMinimumHeight(170)
    return plot


def _category_axis(plot: pg.PlotWidget, names: list[str], axis: str = "bottom") -> None:
    plot.getAxis(axis).setTicks([[(i, name) for i, name in enumerate(names)]])


def _plain_axes(plot: pg.PlotWidget) -> None:
    """Back to automatic ticks (a chart that had category names before)."""
    for name in ("left", "bottom"):
        plot.getAxis(name).setTicks(None)


def _note(plot: pg.PlotWidget, text: str) -> None:
    """An empty chart says why instead of showing bare 0..1 axes."""
    plot.clear()
    _plain_axes(plot)
    item = pg.TextItem(text, anchor=(0.5, 0.5), color=current_colors().secondary)
    plot.addItem(item)
    item.setPos(0.5, 0.5)
    plot.setXRange(0, 1, padding=0)
    plot.setYRange(0, 1, padding=0)
    for name in ("left", "bottom"):
        plot.getAxis(name).setTicks([[]])


# The dashboard re-reads the store while it is on screen, so a fleet that has
# just started fills it without a click on Refresh.
REFRESH_MS = 15_000


class DashboardPage(QWidget):
    loaded = Signal(object)  # DashboardData
    device_clicked = Signal(str)

    def __init__(self, context: AppContext,
                 open_device: Callable[[AppContext, str], bool] = open_device_detail) -> None:
        super().__init__()
        self._context = context
        self._open_device = open_device
        self._background = BackgroundCall(self)
        self.data: DashboardData | None = None
        heading = QLabel("Fleet dashboard")
        heading.setProperty("role", "title")
        self.metric_combo = QComboBox()
        self.metric_combo.setToolTip("Metric for the top-10 chart")
        # Wide enough for the metric names ("temperature", "battery_pct"), never clipped.
        self.metric_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.metric_combo.setMinimumContentsLength(12)
        self.refresh_button = QPushButton("Refresh")
        self.status_label = QLabel("")
        self.status_label.setProperty("role", "secondary")
        top = QHBoxLayout()
        top.addWidget(heading)
        top.addStretch(1)
        top.addWidget(QLabel("Top 10 by"))
        top.addWidget(self.metric_combo)
        top.addWidget(self.refresh_button)

        self.cards: dict[str, StatCard] = {}
        cards = QGridLayout()
        for column, (key, title, colour) in enumerate(CARDS):
            card = StatCard(title, colour)
            self.cards[key] = card
            cards.addWidget(card, 0, column)

        self.by_type_plot = _plot("Devices by type")
        self.online_plot = _plot("Devices reporting (last 24 h, per 15 min)", dates=True)
        self.alerts_plot = _plot("Alerts per hour by severity (last 24 h)", dates=True)
        self.alerts_plot.addLegend(offset=(8, 8))
        self.firmware_plot = _plot("Firmware versions")
        self.top_plot = _plot("Top 10")
        self.map_plot = _plot("Device locations (click a device to open it)")
        self.map_plot.setMouseEnabled(x=True, y=True)
        self.map_plot.setLabel("left", "latitude")
        self.map_plot.setLabel("bottom", "longitude")
        self._status_of: dict[str, str] = {}
        self.map_points = pg.ScatterPlotItem(
            size=9, hoverable=True, hoverSize=13,
            tip=lambda x, y, data: f"{data} ({self._status_of.get(data, '?')})")
        self.map_points.sigClicked.connect(self._map_clicked)
        self.map_plot.addItem(self.map_points)
        self.map_note = pg.TextItem(
            "No device location yet: devices appear here when they report\n"
            "lat/lon in telemetry or are registered with a location.",
            anchor=(0.5, 0.5))
        self.map_note.setPos(0.5, 0.5)
        self.map_plot.addItem(self.map_note, ignoreBounds=True)
        self.online_note = pg.TextItem("", anchor=(0.5, 0.5))
        self._top_names: list[str] = []
        self.top_plot.scene().sigMouseClicked.connect(self._top_clicked)
        grid = QGridLayout()
        plots = (self.by_type_plot, self.online_plot, self.alerts_plot, self.firmware_plot,
                 self.top_plot, self.map_plot)
        for i, plot in enumerate(plots):
            grid.addWidget(plot, i // 3, i % 3)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status_label)
        layout.addLayout(cards)
        layout.addLayout(grid, 1)
        self.refresh_button.clicked.connect(self.refresh)
        self.metric_combo.activated.connect(lambda _i: self.refresh())
        self.device_clicked.connect(lambda device: self._open_device(self._context, device))
        self._loading = False
        self.refresh_timer = QTimer(self)
        self.refresh_timer.setInterval(REFRESH_MS)
        self.refresh_timer.timeout.connect(self._auto_refresh)
        self.refresh_timer.start()
        self.refresh()

    def _auto_refresh(self) -> None:
        if self.isVisible() and not self._loading:
            self.refresh(quiet=True)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self.data is not None and not self._loading:
            self.refresh(quiet=True)  # coming back to the page: show the fleet as it is now

    def refresh(self, *, quiet: bool = False) -> None:
        if not quiet or self.data is None:
            self.status_label.setText("Loading…")
            self.status_label.setVisible(True)
        self._loading = True
        context = self._context
        metric = self.metric_combo.currentText()

        def load() -> DashboardData:
            # Runs on a worker thread: opening the backend may migrate a database.
            return context.api.analytics.overview(top_metric=metric)

        # Latest wins: a refresh for an earlier top-10 metric never paints over this one.
        self._background.start(load, self.show_data, self._failed, key="overview")

    def _failed(self, exc: BaseException) -> None:
        self._loading = False
        self.status_label.setText(f"Could not load fleet statistics: {exc}")
        self.status_label.setVisible(True)

    def show_data(self, data: DashboardData) -> None:
        self._loading = False
        self.data = data
        dashboard = data.stats.as_dashboard()
        for key, card in self.cards.items():
            card.set_value(int(dashboard[key]))
        self.status_label.setText("" if data.stats.total else "No devices yet.")
        self.status_label.setVisible(not data.stats.total)
        self._draw_by_type(list(dashboard["by_type"].items()))
        self._draw_online(data)
        self._draw_alerts(data)
        self._draw_bars(self.firmware_plot, data.firmware, "#6366f1",
                        empty="No firmware versions reported yet")
        self._draw_top(data)
        self._draw_map(data)
        self.metric_combo.blockSignals(True)
        self.metric_combo.clear()
        self.metric_combo.addItems(data.metrics)
        self.metric_combo.setCurrentText(data.top_metric)
        self.metric_combo.blockSignals(False)
        self.loaded.emit(data)

    # -- charts ------------------------------------------------------------------------------
    def _draw_by_type(self, types: list[tuple[str, int]]) -> None:
        # An empty chart with 0-1 axes reads as broken; hide it until there is data.
        self.by_type_plot.setVisible(bool(types))
        self._draw_bars(self.by_type_plot, types, "#3b82f6")

    @staticmethod
    def _draw_bars(plot: pg.PlotWidget, pairs: list[tuple[str, int]], colour: str,
                   empty: str = "No data yet") -> None:
        """Horizontal bars, names on the left axis: type names and versions
        ("environmental", "power_meter") never overlap however many there are."""
        if not pairs:
            _note(plot, empty)
            return
        plot.clear()
        _plain_axes(plot)
        rows = pairs[::-1]  # the first pair on top
        ys = np.arange(len(rows))
        widths = np.array([count for _, count in rows], dtype=float)
        plot.addItem(pg.BarGraphItem(x0=0, y=ys, height=0.6, width=widths, brush=colour))
        _category_axis(plot, [name for name, _ in rows], "left")
        plot.setXRange(0, float(widths.max()) * 1.15)
        plot.setYRange(-0.6, len(rows) - 0.4)

    def _draw_online(self, data: DashboardData) -> None:
        """One bar per 15-minute bucket: a fleet that started minutes ago has
        one bucket, which a line could not draw (one point is no line)."""
        plot = self.online_plot
        plot.clear()
        start = data.since.timestamp()
        if data.online_ts_ms.size:
            bucket_s = ONLINE_BUCKET_MS / 1000.0
            x = data.online_ts_ms / 1000.0 + bucket_s / 2
            plot.addItem(pg.BarGraphItem(x=x, height=data.online_count.astype(float),
                                         width=bucket_s * 0.85, brush="#16a34a",
                                         pen=pg.mkPen("#15803d")))
            plot.setYRange(0, max(float(data.online_count.max()) * 1.15, 1.0))
        else:
            self.online_note.setText(data.online_note)
            self.online_note.setColor(current_colors().secondary)
            plot.addItem(self.online_note)
            self.online_note.setPos(start + 12 * 3600, 0.5)
            plot.setYRange(0, 1)
        plot.setXRange(start, start + 24 * 3600 + ONLINE_BUCKET_MS / 1000.0, padding=0)

    def _draw_alerts(self, data: DashboardData) -> None:
        plot = self.alerts_plot
        plot.clear()
        plot.plotItem.legend.clear()
        x = data.hour_start_ms / 1000.0 + 1800.0
        bottom = np.zeros(x.size)
        for severity in (Severity.INFO, Severity.WARNING, Severity.CRITICAL):
            counts = data.alerts_per_hour.get(severity.value, np.zeros(x.size, np.int64))
            if counts.any():
                plot.addItem(pg.BarGraphItem(x=x, y0=bottom, height=counts, width=3000,
                                             brush=SEVERITY_COLOURS[severity.value],
                                             name=severity.value))
            bottom = bottom + counts
        top = float(bottom.max()) if bottom.size else 0.0
        plot.setYRange(0, max(top * 1.15, 1.0))
        if x.size:
            plot.setXRange(float(x[0]) - 1800, float(x[-1]) + 1800, padding=0)

    def _draw_top(self, data: DashboardData) -> None:
        plot = self.top_plot
        plot.clear()
        plot.setTitle(f"Top 10 by {data.top_metric}" if data.top_metric else "Top 10")
        if not data.top:
            self._top_names = []
            _note(plot, "No readings yet")
            return
        _plain_axes(plot)
        names = [device for device, _ in data.top][::-1]
        values = np.array([value for _, value in data.top][::-1], dtype=float)
        ys = np.arange(len(names))
        bars = pg.BarGraphItem(x0=np.minimum(values, 0), y=ys, height=0.6,
                               width=np.abs(values), brush="#0891b2")
        plot.addItem(bars)
        _category_axis(plot, names, "left")
        plot.setXRange(min(0.0, float(values.min())), max(0.0, float(values.max())) * 1.1
                       or 1.0)
        plot.setYRange(-0.6, len(names) - 0.4)
        self._top_names = names

    def _top_clicked(self, event: object) -> None:
        pos = event.scenePos()  # type: ignore[attr-defined]
        vb = self.top_plot.getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            return
        row = round(vb.mapSceneToView(pos).y())
        if 0 <= row < len(self._top_names):
            self.device_clicked.emit(self._top_names[row])

    def _draw_map(self, data: DashboardData) -> None:
        """Positions reported in telemetry (lat/lon) come first, registered
        locations second; with neither, the map says what it needs."""
        loc = data.locations
        self.map_note.setVisible(loc is None)
        for name in ("left", "bottom"):
            self.map_plot.getAxis(name).setStyle(showValues=loc is not None)
        if loc is None:
            self.map_points.setData([])
            self.map_note.setColor(current_colors().secondary)
            self.map_plot.setXRange(0, 1, padding=0)
            self.map_plot.setYRange(0, 1, padding=0)
            return
        brushes = [pg.mkBrush(STATUS_COLOURS.get(s, "#6b7280")) for s in loc.status]
        self.map_points.setData(x=loc.longitude, y=loc.latitude, data=loc.device_id,
                                brush=brushes, pen=pg.mkPen(current_colors().surface,
                                                            width=0.8))
        self._status_of = dict(zip(loc.device_id, loc.status, strict=True))
        self.map_plot.autoRange()

    def _map_clicked(self, _item: object, points: list[object]) -> None:
        if points:
            self.device_clicked.emit(str(points[0].data()))  # type: ignore[attr-defined]

    def click_map_device(self, device_id: str) -> None:
        """What a click on that device's dot does (tests use it)."""
        for point in self.map_points.points():
            if point.data() == device_id:
                self._map_clicked(self.map_points, [point])
                return
        raise KeyError(device_id)
