"""Fleet dashboard: the Smart_IOT dashboard numbers at a glance plus devices per type.

A chart, because a supervisor scanning for a type that went dark reads bars
faster than a table.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from console.widgets.background import BackgroundCall
from core.context import AppContext
from core.services.fleet_stats import FleetStatistics, compute_fleet_statistics

CARDS = (
    ("total", "Devices", "#3b82f6"),
    ("online", "Online", "#16a34a"),
    ("offline", "Offline", "#6b7280"),
    ("warning", "Warning", "#d97706"),
    ("error", "Error", "#dc2626"),
)


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


class DashboardPage(QWidget):
    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self._context = context
        self._background = BackgroundCall(self)
        heading = QLabel("Fleet dashboard")
        heading.setProperty("role", "title")
        self.refresh_button = QPushButton("Refresh")
        self.status_label = QLabel("")
        self.status_label.setProperty("role", "secondary")
        top = QHBoxLayout()
        top.addWidget(heading)
        top.addStretch(1)
        top.addWidget(self.refresh_button)

        self.cards: dict[str, StatCard] = {}
        grid = QGridLayout()
        for column, (key, title, colour) in enumerate(CARDS):
            card = StatCard(title, colour)
            self.cards[key] = card
            grid.addWidget(card, 0, column)

        self.by_type_plot = pg.PlotWidget(title="Devices by type")
        self.by_type_plot.setMouseEnabled(x=False, y=False)
        self.by_type_plot.hideButtons()
        self.by_type_plot.showGrid(y=True, alpha=0.2)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status_label)
        layout.addLayout(grid)
        layout.addWidget(self.by_type_plot, 1)
        self.refresh_button.clicked.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        self.status_label.setText("Loading…")
        context = self._context

        def load() -> FleetStatistics:
            # Runs on a worker thread: opening the backend may migrate a database.
            return compute_fleet_statistics(context.backend.registry.list())

        self._background.start(load, self.show_statistics, self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.status_label.setText(f"Could not load fleet statistics: {exc}")

    def show_statistics(self, stats: FleetStatistics) -> None:
        dashboard = stats.as_dashboard()
        for key, card in self.cards.items():
            card.set_value(int(dashboard[key]))
        self.status_label.setText("" if stats.total else "No devices yet.")
        self.status_label.setVisible(not stats.total)
        self.by_type_plot.clear()
        types = list(dashboard["by_type"].items())
        # An empty chart with 0-1 axes reads as broken; hide it until there is data.
        self.by_type_plot.setVisible(bool(types))
        if not types:
            return
        xs = np.arange(len(types))
        heights = np.array([count for _, count in types], dtype=float)
        self.by_type_plot.addItem(pg.BarGraphItem(x=xs, height=heights, width=0.6, brush="#3b82f6"))
        ticks = [(i, name) for i, (name, _) in enumerate(types)]
        self.by_type_plot.getAxis("bottom").setTicks([ticks])
        self.by_type_plot.setYRange(0, float(heights.max()) * 1.15)
