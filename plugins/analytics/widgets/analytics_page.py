"""The Analytics page: the fleet dashboard and the telemetry charts as tabs."""

from __future__ import annotations

from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from core.context import AppContext
from plugins.analytics.widgets.dashboard_page import DashboardPage


class AnalyticsPage(QWidget):
    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.tabs = QTabWidget()
        self.dashboard = DashboardPage(context)
        self.tabs.addTab(self.dashboard, "Dashboard")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)

    # The dashboard's parts, reachable from the page the window hosts (tests and
    # the screenshot script look at the page, not at its tabs).
    @property
    def cards(self) -> dict[str, object]:
        return dict(self.dashboard.cards)

    @property
    def by_type_plot(self) -> object:
        return self.dashboard.by_type_plot
