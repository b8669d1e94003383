"""Flagged points of the charted series, and turning one into an alert rule.

Two clicks: select a flag, press "Create alert rule" (or Enter). The rule is a
plain threshold rule on that device and metric, with its limit half-way
between the rolling baseline and the flagged value, so the same excursion
would raise an alert next time while normal noise would not. It is saved
through the alerts use case (``context.api.alerts.add_rule``: the role check
and the audit entry) like a rule made in the rule editor, and can be refined
there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from console.widgets.background import BackgroundCall
from console.widgets.tables import configure_row_table
from core.model import AlertRule, RuleScope, Severity
from core.ports.fleet_api import FleetApi
from plugins.analytics.series_math import (
    DEFAULT_WINDOW,
    DEFAULT_Z,
    AnomalyFlags,
    suggested_limit,
)

MAX_ROWS = 500
HEADERS = ("Time", "Device", "Metric", "Value", "Baseline", "z")


@dataclass(frozen=True, slots=True)
class FlaggedPoint:
    device_id: str
    metric: str
    ts_ms: int
    value: float
    baseline: float
    zscore: float


def rule_for(point: FlaggedPoint) -> AlertRule:
    op, limit = suggested_limit(point.value, point.baseline)
    return AlertRule(
        f"Anomaly: {point.metric} {op} {limit:g} on {point.device_id}", "threshold",
        {"metric": point.metric, "op": op, "limit": limit}, Severity.WARNING,
        RuleScope(device_ids=frozenset({point.device_id})))


class AnomalyPanel(QWidget):
    """``settings_changed`` asks the owning chart to recompute its flags."""

    settings_changed = Signal()
    rule_created = Signal(object)

    def __init__(self, api_of: Callable[[], FleetApi], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._api_of = api_of
        self._background = BackgroundCall(self)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(1.0, 50.0)
        self.threshold.setSingleStep(0.5)
        self.threshold.setValue(DEFAULT_Z)
        self.threshold.setPrefix("|z| ≥ ")
        self.threshold.setToolTip("Flag points this many standard deviations away from the "
                                  "rolling mean of the points before them")
        self.window_points = QSpinBox()
        self.window_points.setRange(5, 10_000)
        self.window_points.setValue(DEFAULT_WINDOW)
        self.window_points.setSuffix(" points")
        self.window_points.setToolTip("Length of the rolling baseline")
        self.create_button = QPushButton("Create alert rule")
        self.create_button.setEnabled(False)
        self.create_button.setToolTip("A threshold rule on the selected flag's device and "
                                      "metric (Enter)")
        self.status = QLabel("")
        self.status.setProperty("role", "secondary")
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        configure_row_table(self.table, QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        top = QHBoxLayout()
        title = QLabel("Anomalies")
        title.setProperty("role", "subtitle")
        top.addWidget(title)
        top.addWidget(self.threshold)
        top.addWidget(self.window_points)
        top.addStretch(1)
        top.addWidget(self.status)
        top.addWidget(self.create_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        self.points: list[FlaggedPoint] = []
        self.threshold.valueChanged.connect(self.settings_changed)
        self.window_points.valueChanged.connect(self.settings_changed)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.create_button.clicked.connect(self.create_rule_from_selected)
        enter = QShortcut(QKeySequence(Qt.Key.Key_Return), self.table)
        enter.setContext(Qt.ShortcutContext.WidgetShortcut)
        enter.activated.connect(self.create_rule_from_selected)

    def set_flags(self, flags: Sequence[AnomalyFlags]) -> None:
        points = [
            FlaggedPoint(f.device_id, f.metric, int(t), float(v), float(b), float(z))
            for f in flags
            for t, v, b, z in zip(f.ts_ms.tolist(), f.value.tolist(), f.baseline.tolist(),
                                  f.zscore.tolist(), strict=True)
        ]
        points.sort(key=lambda p: -abs(p.zscore))
        self.points = points[:MAX_ROWS]
        self.table.setRowCount(len(self.points))
        for row, p in enumerate(self.points):
            cells = (datetime.fromtimestamp(p.ts_ms / 1000).strftime("%Y-%m-%d %H:%M:%S"),
                     p.device_id, p.metric, f"{p.value:.4g}", f"{p.baseline:.4g}",
                     f"{p.zscore:+.1f}")
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col >= 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        total = int(np.sum([len(f) for f in flags])) if flags else 0
        more = f" (showing the {MAX_ROWS} strongest)" if total > MAX_ROWS else ""
        self.status.setText(f"{total:,} flagged{more}" if total else "Nothing unusual")
        self._selection_changed()

    def selected_point(self) -> FlaggedPoint | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        row = rows[0].row()
        return self.points[row] if 0 <= row < len(self.points) else None

    def _selection_changed(self) -> None:
        self.create_button.setEnabled(self.selected_point() is not None)

    def create_rule_from_selected(self) -> None:
        point = self.selected_point()
        if point is None:
            return
        api_of = self._api_of
        rule = rule_for(point)
        self.create_button.setEnabled(False)
        self.status.setText("Saving rule…")

        def saved(stored: AlertRule) -> None:
            self.status.setText(f"Rule “{stored.name}” created")
            self._selection_changed()
            self.rule_created.emit(stored)

        def failed(exc: BaseException) -> None:
            self.status.setText(f"Could not save the rule: {exc}")
            self._selection_changed()

        def save() -> AlertRule:
            alerts = api_of().alerts
            if not alerts.features().rules:
                raise RuntimeError("this backend has no alert rules")
            return alerts.add_rule(rule)

        self._background.start(save, saved, failed)
