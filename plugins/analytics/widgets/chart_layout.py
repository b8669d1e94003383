"""The arrangement the Live and History views share, so they look like one tool:
a toolbar (controls left, status and actions right), the series picker on the
left, and the chart above its anomaly list."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QSplitter, QVBoxLayout, QWidget


def lay_out_chart_view(host: QWidget, controls: Sequence[QWidget], actions: Sequence[QWidget],
                       picker: QWidget, chart: QWidget, below_chart: QWidget) -> None:
    bar = QHBoxLayout()
    for widget in controls:
        bar.addWidget(widget)
    bar.addStretch(1)
    for widget in actions:
        bar.addWidget(widget)
    right = QSplitter(Qt.Orientation.Vertical)
    right.addWidget(chart)
    right.addWidget(below_chart)
    right.setStretchFactor(0, 3)
    right.setStretchFactor(1, 1)
    body = QSplitter(Qt.Orientation.Horizontal)
    body.addWidget(picker)
    body.addWidget(right)
    body.setStretchFactor(1, 4)
    body.setSizes([220, 900])
    layout = QVBoxLayout(host)
    layout.addLayout(bar)
    layout.addWidget(body, 1)
