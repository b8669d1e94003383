"""The Analytics page: fleet dashboard, live charts and history as tabs.

The backend is created lazily on a worker thread the first time a page needs
data; the live view subscribes to its feed once it exists, so opening the
page never blocks the window on a database migration or broker connection.
"""

from __future__ import annotations

from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from console.widgets.background import BackgroundCall
from core.context import AppContext
from core.model import Device
from core.ports.backend import Backend
from plugins.analytics.widgets.dashboard_page import DashboardPage
from plugins.analytics.widgets.history_view import HistoryView
from plugins.analytics.widgets.live_view import LiveView


class AnalyticsPage(QWidget):
    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self._context = context
        self._background = BackgroundCall(self)
        self.tabs = QTabWidget()
        self.dashboard = DashboardPage(context)
        self.live = LiveView(self._backend)
        self.history = HistoryView(self._backend)
        self.live.anomalies.actor = self.history.anomalies.actor = context.actor
        self.tabs.addTab(self.dashboard, "Dashboard")
        self.tabs.addTab(self.live, "Live")
        self.tabs.addTab(self.history, "History")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        self.dashboard.loaded.connect(self._fleet_loaded)
        self.destroyed.connect(self.live.close_feed)

    def _backend(self) -> Backend:
        return self._context.backend

    def _fleet_loaded(self, _data: object) -> None:
        """Once the dashboard has opened the backend: device lists and the live feed."""
        context = self._context

        def devices() -> tuple[Backend, list[Device]]:
            backend = context.backend
            return backend, backend.registry.list()

        def done(result: tuple[Backend, list[Device]]) -> None:
            backend, found = result
            self.live.attach(backend)
            self.live.picker.set_devices(found)
            self.history.picker.set_devices(found)

        self._background.start(devices, done, lambda _exc: None)

    def show_history(self, devices: list[str], metrics: list[str]) -> None:
        self.tabs.setCurrentWidget(self.history)
        self.history.picker.select(devices, metrics)

    # The dashboard's parts, reachable from the page the window hosts (tests and
    # the screenshot script look at the page, not at its tabs).
    @property
    def cards(self) -> dict[str, object]:
        return dict(self.dashboard.cards)

    @property
    def by_type_plot(self) -> object:
        return self.dashboard.by_type_plot
