"""The selected alert: every field, its lifecycle and the metric around it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QVBoxLayout,
    QWidget,
)

from console.theme import current_colors, follow_theme
from console.widgets.background import BackgroundCall
from core.model import Alert
from core.model.rule import AlertRule
from core.ports.fleet_api.alerts import AlertsApi
from core.ports.telemetry import Series

from ._common import SEVERITY_COLOURS, local_time, relative_time, short_time

log = logging.getLogger(__name__)

WINDOW = timedelta(minutes=30)


@dataclass
class DetailData:
    alert: Alert
    rule: AlertRule | None = None
    metric: str = ""
    series: Series | None = None
    history: list[tuple[datetime, str]] = field(default_factory=list)
    note: str = ""


def load_detail(alerts: AlertsApi, alert: Alert) -> DetailData:
    """Blocking: runs on a worker thread."""
    found = alerts.detail(alert.alert_id)
    data = DetailData(found.alert, found.rule, found.metric, found.series)
    if not found.metric:
        data.note = "No telemetry stored for this device."
    data.history = ([(e.at, e.describe()) for e in found.history] if found.history
                    else lifecycle(found.alert))
    return data


def lifecycle(alert: Alert) -> list[tuple[datetime, str]]:
    """What the alert's own fields tell, for a backend that keeps no history
    and no audit trail."""
    events: list[tuple[datetime, str]] = [(alert.created_at, "raised")]
    if alert.acknowledged_at:
        text = f"acknowledged by {alert.acknowledged_by}"
        if alert.ack_comment:
            text += f": “{alert.ack_comment}”"
        events.append((alert.acknowledged_at, text))
    if alert.resolved_at:
        events.append((alert.resolved_at, f"resolved by {alert.resolved_by}"))
    if alert.snoozed_until and alert.is_snoozed():
        events.append((alert.updated_at, f"snoozed until {local_time(alert.snoozed_until)}"))
    return sorted(events, key=lambda ev: ev[0])


class AlertDetailPanel(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AlertDetail")
        self._background = BackgroundCall(self)
        self._alerts: AlertsApi | None = None
        self.data: DetailData | None = None
        self._limit: float | None = None

        self.title = QLabel("Select an alert to see its details")
        self.title.setProperty("role", "secondary")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fields: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setVerticalSpacing(3)
        for name in ("Severity", "State", "Device", "Rule", "Value", "Raised", "Reopened",
                     "Updated", "Acknowledged", "Comment", "Resolved", "Snoozed until",
                     "Version", "Alert id"):
            label = QLabel("")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            self.fields[name] = label
            caption = QLabel(name)
            caption.setProperty("role", "secondary")
            form.addRow(caption, label)
        form_box = QWidget()
        form_box.setLayout(form)
        form_box.setMinimumWidth(300)
        form_box.setMaximumWidth(400)

        history_title = QLabel("History")
        history_title.setProperty("role", "secondary")
        self.history = QListWidget()
        self.history.setObjectName("AlertHistory")
        self.history.setWordWrap(True)
        self.history.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.history.setMinimumWidth(220)
        self.history.setMaximumWidth(340)
        history_box = QVBoxLayout()
        history_box.setContentsMargins(0, 0, 0, 0)
        history_box.addWidget(history_title)
        history_box.addWidget(self.history, 1)

        self.chart_title = QLabel("")
        self.chart_title.setProperty("role", "secondary")
        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.plot.setObjectName("AlertChart")
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setMinimumHeight(160)
        self.curve = self.plot.plot([], [])
        self.marker = pg.ScatterPlotItem(size=10)
        self.plot.addItem(self.marker)
        self.threshold_line = pg.InfiniteLine(angle=0, movable=False)
        self.moment_line = pg.InfiniteLine(angle=90, movable=False)
        self.plot.addItem(self.threshold_line)
        self.plot.addItem(self.moment_line)
        self.threshold_line.hide()
        self.moment_line.hide()
        # the curve and the marker's outline are drawn in theme colours: redraw
        follow_theme(self, lambda _colours: self._draw(self.data) if self.data else None)
        chart_box = QVBoxLayout()
        chart_box.setContentsMargins(0, 0, 0, 0)
        chart_box.addWidget(self.chart_title)
        chart_box.addWidget(self.plot, 1)

        body = QHBoxLayout()
        body.setSpacing(16)
        body.addWidget(form_box)
        body.addLayout(history_box)
        body.addLayout(chart_box, 1)
        self.body = QWidget()
        self.body.setLayout(body)
        self.body.setVisible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.body, 1)

    def set_api(self, alerts: AlertsApi) -> None:
        self._alerts = alerts

    def clear(self, text: str = "Select an alert to see its details") -> None:
        self._background.cancel("detail")
        self.data = None
        self.title.setText(text)
        self.body.setVisible(False)

    def show_alert(self, alert: Alert | None) -> None:
        if alert is None or self._alerts is None:
            self.clear()
            return
        self._fill_fields(alert, None)
        self.body.setVisible(True)
        alerts = self._alerts
        # key: a newer selection supersedes this one (its answer is dropped)
        self._background.start(lambda: load_detail(alerts, alert), self._loaded, self._failed,
                               key="detail")

    def _failed(self, exc: BaseException) -> None:
        self.chart_title.setText(f"Could not load the details: {exc}")

    def _loaded(self, data: DetailData) -> None:
        self.data = data
        self._fill_fields(data.alert, data.rule)
        self.history.clear()
        for when, text in data.history:
            self.history.addItem(f"{short_time(when)}  {text}")
        self._draw(data)

    def _fill_fields(self, a: Alert, rule: AlertRule | None) -> None:
        colour = SEVERITY_COLOURS[a.severity]
        self.title.setText(f"<b style='color:{colour}'>{a.severity.value.upper()}</b>"
                           f"&nbsp; {a.device_id} · {_escape(a.message)}")
        f = self.fields
        f["Severity"].setText(f"<span style='color:{colour}'>●</span> {a.severity.value}")
        f["State"].setText(a.state.value)
        f["Device"].setText(a.device_id)
        # The name alone: "name (rule-id)" wrapped onto a second line the form has no
        # room for, which cut the id in half; the id stays one hover away.
        f["Rule"].setText(rule.name if rule else a.rule_id)
        f["Rule"].setToolTip(f"Rule id: {a.rule_id}")
        f["Value"].setText("" if a.value is None else f"{a.value:g}")
        f["Raised"].setText(f"{local_time(a.created_at)} ({relative_time(a.created_at)})")
        f["Updated"].setText(local_time(a.updated_at))
        f["Acknowledged"].setText(
            f"{a.acknowledged_by} at {local_time(a.acknowledged_at)}" if a.acknowledged_by else "—")
        f["Comment"].setText(a.ack_comment or "—")
        f["Resolved"].setText(
            (f"{a.resolved_by} at {local_time(a.resolved_at)}"
             + (f": “{_escape(a.resolve_comment)}”" if a.resolve_comment else ""))
            if a.resolved_by else "—")
        reopened = [when for when, text in (self.data.history if self.data is not None
                                            and self.data.alert.alert_id == a.alert_id
                                            else []) if text.startswith("reopened")]
        f["Reopened"].setText("—" if not reopened else local_time(reopened[-1]) + (
            f" ({len(reopened)} times)" if len(reopened) > 1 else ""))
        f["Snoozed until"].setText(local_time(a.snoozed_until) if a.is_snoozed() else "—")
        f["Version"].setText(str(a.version))
        f["Alert id"].setText(a.alert_id)

    def _draw(self, data: DetailData) -> None:
        c = current_colors()
        self.plot.setBackground(c.plot_background)
        alert = data.alert
        moment = alert.created_at.timestamp()
        series = data.series
        if series is None or len(series) == 0:
            self.curve.setData([], [])
            self.marker.setData([], [])
            self.chart_title.setText(data.note or f"No {data.metric} readings within ±30 min "
                                     "of the alert.")
        else:
            x = series.ts_ms.astype(np.float64) / 1000.0
            y = series.value
            self.curve.setData(x, y, pen=pg.mkPen(c.accent, width=1.6))
            self.chart_title.setText(f"{data.metric} on {alert.device_id}, ±30 min around "
                                     "the alert")
        if alert.value is not None:
            self.marker.setData([moment], [alert.value], brush=pg.mkBrush(
                SEVERITY_COLOURS[alert.severity]), pen=pg.mkPen(c.surface, width=1.5))
        else:
            self.marker.setData([], [])
        self.moment_line.setPen(pg.mkPen(SEVERITY_COLOURS[alert.severity], width=1,
                                         style=Qt.PenStyle.DashLine))
        self.moment_line.setValue(moment)
        self.moment_line.show()
        limit = self._limit = _threshold(data.rule)
        if limit is not None:
            self.threshold_line.setPen(pg.mkPen(c.danger, width=1.2, style=Qt.PenStyle.DashLine))
            self.threshold_line.setValue(limit)
            self.threshold_line.show()
        else:
            self.threshold_line.hide()
        self.plot.setXRange(moment - WINDOW.total_seconds(), moment + WINDOW.total_seconds(),
                            padding=0.01)
        self.plot.enableAutoRange(axis="y")

    @property
    def threshold(self) -> float | None:
        return self._limit


def _threshold(rule: AlertRule | None) -> float | None:
    if rule is None:
        return None
    for key in ("limit", "threshold"):
        value = rule.params.get(key)
        if isinstance(value, int | float):
            return float(value)
    return None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
