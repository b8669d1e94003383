"""History: any devices and metrics over the last hour, day, week or a custom range.

The store aggregates into about one bucket per pixel column of the chart
(min/avg/max per bucket in SQL), so a week of 1 Hz data arrives as ~1,000
rows per series; "Raw" and fixed bucket sizes are there for when the exact
readings matter. Missing buckets and silent devices are drawn as gaps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from PySide6.QtCore import QDateTime, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QLabel,
    QPushButton,
    QWidget,
)

from console.widgets.background import BackgroundCall
from core.model.analytics import History, HistoryRequest
from core.ports.fleet_api import FleetApi
from core.ports.telemetry import Series
from core.text import plural
from plugins.analytics.history import RANGE_PRESETS
from plugins.analytics.series_math import (
    AnomalyFlags,
    flag_anomalies,
    gap_threshold_ms,
    with_gaps,
)
from plugins.analytics.time_args import format_duration_ms
from plugins.analytics.widgets.anomaly_panel import AnomalyPanel
from plugins.analytics.widgets.chart_files import ChartFileActions
from plugins.analytics.widgets.chart_layout import lay_out_chart_view
from plugins.analytics.widgets.series_picker import SeriesPicker
from plugins.analytics.widgets.time_chart import ChartSeries, TimeChart

PICK_HINT = "Pick one or more devices on the left, then a metric, to draw their history."
NO_READINGS_HINT = ("No readings are stored for the chosen devices yet. Their metrics "
                    "appear on the left once they report, and the chart draws them.")
RESOLUTIONS: tuple[tuple[str, int | str | None], ...] = (
    ("Auto (fit width)", "auto"), ("Raw readings", None), ("10 s", 10_000), ("1 min", 60_000),
    ("5 min", 300_000), ("15 min", 900_000), ("1 hour", 3_600_000),
)


# The use case's answer: request, series, threshold lines and alert marks.
HistoryResult = History


def chart_series(series: Series) -> ChartSeries:
    """Store answer -> what the chart draws, with NaN rows at the gaps."""
    threshold = gap_threshold_ms(series)
    if series.minimum is not None and series.maximum is not None:
        ts, (mean, low, high) = with_gaps(series.ts_ms, [series.value, series.minimum,
                                                         series.maximum], threshold)
        return ChartSeries(series.device_id, series.metric, ts / 1000.0, mean, low, high)
    ts, (values,) = with_gaps(series.ts_ms, [series.value], threshold)
    return ChartSeries(series.device_id, series.metric, ts / 1000.0, values)


class HistoryView(QWidget):
    loaded = Signal(object)  # HistoryResult
    failed = Signal(str)

    def __init__(self, api_of: Callable[[], FleetApi], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._api_of = api_of
        self._background = BackgroundCall(self)
        self.result: HistoryResult | None = None
        self.picker = SeriesPicker(api_of)
        self.chart = TimeChart()
        self.anomalies = AnomalyPanel(api_of)

        self.range_combo = QComboBox()
        for label, span in RANGE_PRESETS:
            self.range_combo.addItem(label, span)
        self.range_combo.addItem("Custom…", None)
        # The widest preset first; the first load with data narrows it to the
        # smallest preset that holds all of it (see _fit_range), so a new
        # install's few minutes fill the chart instead of one pixel of a day.
        self.range_combo.setCurrentIndex(len(RANGE_PRESETS) - 1)
        self.fit_range = True
        self._fit_pending = False  # the newest load may narrow the range
        self._zoom_to_data = False
        now = QDateTime.currentDateTime()
        self.custom_from = QDateTimeEdit(now.addDays(-1))
        self.custom_to = QDateTimeEdit(now)
        for edit in (self.custom_from, self.custom_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd HH:mm")
            edit.setVisible(False)
        self.resolution = QComboBox()
        for label, value in RESOLUTIONS:
            self.resolution.addItem(label, value)
        self.stacked = QCheckBox("Stack metrics")
        self.flag_box = QCheckBox("Flag anomalies")
        self.flag_box.setChecked(True)
        self.load_button = QPushButton("Load")
        self.load_button.setToolTip("Query the store again (Ctrl+R)")
        self.files = ChartFileActions(self.chart, "history", self)
        self.status = QLabel("Pick devices and a metric")
        self.chart.set_hint(PICK_HINT)
        self.status.setProperty("role", "secondary")

        lay_out_chart_view(
            self, [self.range_combo, self.custom_from, self.custom_to, self.resolution,
                   self.stacked, self.flag_box],
            [self.status, self.load_button, self.files.csv_button, self.files.image_button],
            self.picker, self.chart, self.anomalies)

        self.picker.changed.connect(self.reload)
        self.range_combo.currentIndexChanged.connect(self._range_changed)
        self.custom_from.editingFinished.connect(self.reload)
        self.custom_to.editingFinished.connect(self.reload)
        self.resolution.currentIndexChanged.connect(self.reload)
        self.stacked.toggled.connect(self.chart.set_stacked)
        self.flag_box.toggled.connect(self._reflag)
        self.anomalies.settings_changed.connect(self._reflag)
        self.anomalies.rule_created.connect(lambda _rule: self.reload_same_range())
        self.load_button.clicked.connect(self.reload)
        self.files.exported.connect(lambda path, what: self.status.setText(
            f"Saved {what} to {path}"))
        self.files.failed.connect(self.status.setText)
        QShortcut(QKeySequence("Ctrl+R"), self, self.reload)

    # -- request ---------------------------------------------------------------------------
    def _range_changed(self) -> None:
        self.fit_range = False  # the person chose a range: keep it
        custom = self.range_combo.currentData() is None
        self.custom_from.setVisible(custom)
        self.custom_to.setVisible(custom)
        self.reload()

    def time_range(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        span = self.range_combo.currentData()
        if isinstance(span, timedelta):
            end = now or datetime.now(UTC)
            return end - span, end
        start = self.custom_from.dateTime().toSecsSinceEpoch()
        end_s = self.custom_to.dateTime().toSecsSinceEpoch()
        return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end_s, UTC)

    def set_custom_range(self, start: datetime, end: datetime) -> None:
        self.custom_from.setDateTime(QDateTime.fromSecsSinceEpoch(int(start.timestamp())))
        self.custom_to.setDateTime(QDateTime.fromSecsSinceEpoch(int(end.timestamp())))
        self.range_combo.setCurrentIndex(self.range_combo.count() - 1)

    def current_request(self) -> HistoryRequest | None:
        devices = self.picker.selected_devices()
        metrics = self.picker.selected_metrics()
        if not devices or not metrics:
            return None
        start, end = self.time_range()
        resolution = self.resolution.currentData()
        if resolution == "auto":
            width = max(self.chart.graphics.width() - 60, 200)
            return HistoryRequest.for_width(devices, metrics, start, end, width)
        return HistoryRequest(tuple(devices), tuple(metrics), start, end,
                              resolution if isinstance(resolution, int) else None)

    # -- loading ---------------------------------------------------------------------------
    def reload(self) -> None:
        try:
            request = self.current_request()
        except ValueError as exc:
            self.status.setText(str(exc))
            return
        if request is None:
            waiting = self.picker.waiting_for_readings
            self.status.setText("Waiting for readings" if waiting else "Pick devices and a metric")
            self.chart.set_hint(NO_READINGS_HINT if waiting else PICK_HINT)
            return
        self.load(request, fit=self.fit_range)

    def reload_same_range(self) -> None:
        """Query what is shown again (e.g. to draw a rule just created from a flag),
        without moving a relative range such as "last day" forward."""
        if self.result is not None:
            self.load(self.result.request)
        else:
            self.reload()

    def load(self, request: HistoryRequest, *, fit: bool = False) -> None:
        """``fit``: the range may still be narrowed to the data (the default
        range, untouched by the person)."""
        self._fit_pending = fit
        api_of = self._api_of
        self.status.setText("Loading…")

        def work() -> HistoryResult:
            return api_of().analytics.history(request)

        # Latest wins: an older request answering after a newer one is dropped.
        self._background.start(work, self.show_result, self._failed, key="history")

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(f"Could not load history: {exc}")
        self.failed.emit(str(exc))

    def _fit_range(self, result: HistoryResult) -> bool:
        """Narrow the (untouched) range to the smallest preset that holds the
        oldest reading shown; True if it changed and a reload is under way."""
        if not self.fit_range or not self._fit_pending \
                or not isinstance(self.range_combo.currentData(), timedelta):
            return False
        firsts = [int(s.ts_ms[0]) for s in result.series if len(s)]
        if not firsts:
            return False
        self.fit_range = False
        # Buckets start before their first reading: the data is at most this old.
        oldest_ms = min(firsts) + (result.request.bucket_ms or 0)
        age = result.request.end - datetime.fromtimestamp(oldest_ms / 1000.0, UTC)
        index = next((i for i, (_label, span) in enumerate(RANGE_PRESETS) if span >= age),
                     len(RANGE_PRESETS) - 1)
        if index == self.range_combo.currentIndex():
            return False
        # Younger than half the smallest range (a fleet that started minutes
        # ago): the first view starts at its first reading, not minutes before.
        self._zoom_to_data = index == 0 and age < RANGE_PRESETS[0][1] / 2
        self.range_combo.blockSignals(True)
        self.range_combo.setCurrentIndex(index)
        self.range_combo.blockSignals(False)
        self.reload()
        return True

    def show_result(self, result: HistoryResult) -> None:
        if self._fit_range(result):
            return
        self.result = result
        self.chart.source = result.series
        self.chart.set_series([chart_series(s) for s in result.series])
        self.chart.set_overlays(result.thresholds, result.marks)
        req = result.request
        start = req.start.timestamp()
        firsts = [float(s.ts_ms[0]) / 1000.0 for s in result.series if len(s)]
        if self._zoom_to_data and firsts:
            end = req.end.timestamp()
            start = max(start, min(firsts) - 0.05 * (end - min(firsts)))
        self._zoom_to_data = False
        self.chart.main_plot.setXRange(start, req.end.timestamp(), padding=0.01)
        for plot in self.chart.plots.values():
            plot.enableAutoRange(axis="y")
        points = sum(len(s) for s in result.series)
        self.chart.set_hint("" if points else
                            "No readings of the chosen devices and metrics in this range; "
                            "try a longer range.")
        resolution = (f"{format_duration_ms(req.bucket_ms)} buckets" if req.bucket_ms
                      else "raw readings")
        self.status.setText(f"{plural(points, 'point')} · {resolution}")
        self._reflag()
        self.loaded.emit(result)

    def _reflag(self) -> None:
        flags: list[AnomalyFlags] = []
        if self.result is not None and self.flag_box.isChecked():
            flags = [flag_anomalies(s, window=self.anomalies.window_points.value(),
                                    threshold=self.anomalies.threshold.value())
                     for s in self.result.series]
        self.chart.set_anomalies(flags)
        self.anomalies.set_flags(flags)
