"""The detail panel's Alerts tab: the shown device's alerts, newest first,
kept live; their worst open severity is the device's health."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from console.theme import current_colors
from core.model import Alert
from plugins.devices.widgets.panel_text import local_time


class AlertsTab(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.alerts_by_id: dict[str, Alert] = {}
        self.alert_list = QTreeWidget()
        self.alert_list.setHeaderLabels(["Raised", "Severity", "State", "Rule", "Message"])
        self.alert_list.setRootIsDecorated(False)
        self.alert_list.setAlternatingRowColors(True)
        self.alert_list.header().setStretchLastSection(True)
        self.alerts_empty = QLabel("No alerts for this device")
        self.alerts_empty.setProperty("role", "secondary")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 8, 4, 0)
        layout.addWidget(self.alerts_empty)
        layout.addWidget(self.alert_list, 1)

    def clear(self) -> None:
        self.alert_list.clear()
        self.alerts_by_id.clear()
        self._refresh_empty()

    def show_alerts(self, alerts: Iterable[Alert]) -> None:
        self.clear()
        for alert in alerts:
            self.upsert(alert)
        self._refresh_empty()

    def upsert(self, alert: Alert) -> None:
        self.alerts_by_id[alert.alert_id] = alert
        for i in range(self.alert_list.topLevelItemCount()):
            item = self.alert_list.topLevelItem(i)
            if item is not None and item.data(0, Qt.ItemDataRole.UserRole) == alert.alert_id:
                _fill(item, alert)
                return
        item = QTreeWidgetItem()
        item.setData(0, Qt.ItemDataRole.UserRole, alert.alert_id)
        _fill(item, alert)
        self.alert_list.insertTopLevelItem(0, item)
        self._refresh_empty()

    def _refresh_empty(self) -> None:
        self.alerts_empty.setVisible(self.alert_list.topLevelItemCount() == 0)


def _fill(item: QTreeWidgetItem, alert: Alert) -> None:
    colours = current_colors()
    item.setText(0, local_time(alert.created_at))
    item.setText(1, alert.severity.value)
    item.setText(2, alert.state.value)
    item.setText(3, alert.rule_id)
    value = f" ({alert.value:g})" if alert.value is not None else ""
    item.setText(4, alert.message + value)
    sev = {"critical": colours.danger, "warning": colours.warning}.get(alert.severity.value)
    if sev:
        item.setForeground(1, QBrush(QColor(sev)))
