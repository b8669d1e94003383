"""The Analytics page: fleet dashboard, live charts and history as tabs.

Every read goes through ``context.api`` (the analytics use cases, limited to
the person's organization), made lazily on a worker thread the first time a
page needs data; the live view subscribes to the backend's feed once it
exists, so opening the page never blocks the window on a database migration
or broker connection.
"""

from __future__ import annotations

from collections import Counter

from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from console.widgets.background import BackgroundCall
from core.context import AppContext
from core.model import Device, DeviceStatus
from core.ports.backend import Backend
from core.ports.fleet_api import FleetApi
from plugins.analytics.widgets.dashboard_page import DashboardPage
from plugins.analytics.widgets.history_view import HistoryView
from plugins.analytics.widgets.live_view import LiveView
from plugins.analytics.widgets.series_picker import Entry, picker_entries


def sensible_device(devices: list[Device]) -> str | None:
    """What Live and History open on, so they do not start blank: the first
    online device (by id) of the fleet's most common type (the fleet's typical
    device, e.g. an environmental sensor and its temperature), else the first
    device that is not retired."""
    working = sorted((d for d in devices if d.status is not DeviceStatus.DECOMMISSIONED),
                     key=lambda d: d.device_id)
    chosen = [d for d in working if d.status is DeviceStatus.ONLINE] or working
    if not chosen:
        return None
    types = Counter(d.device_type for d in chosen)
    common = max(types, key=lambda t: (types[t], -min(
        i for i, d in enumerate(chosen) if d.device_type == t)))
    return next(d.device_id for d in chosen if d.device_type == common)


class AnalyticsPage(QWidget):
    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self._context = context
        self._background = BackgroundCall(self)
        self.tabs = QTabWidget()
        self.dashboard = DashboardPage(context)
        self.live = LiveView(self._api)
        self.history = HistoryView(self._api)
        self.tabs.addTab(self.dashboard, "Dashboard")
        self.tabs.addTab(self.live, "Live")
        self.tabs.addTab(self.history, "History")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        self._devices: list[Device] = []
        self._serves_live = False
        self.dashboard.loaded.connect(self._fleet_loaded)
        self.tabs.currentChanged.connect(lambda _i: self._preselect())
        self.destroyed.connect(self.live.close_feed)

    def _api(self) -> FleetApi:
        return self._context.api

    def _fleet_loaded(self, _data: object) -> None:
        """Once the dashboard has opened the backend: device lists and the live feed."""
        context = self._context

        def devices() -> tuple[Backend, list[Device], list[Entry]]:
            # The live feed is still the backend's (live events are not a use case).
            found = context.api.analytics.devices()
            return context.backend, found, picker_entries(found)

        def done(result: tuple[Backend, list[Device], list[Entry]]) -> None:
            backend, found, entries = result
            self.live.attach(backend)
            self.live.picker.set_entries(entries)
            self.history.picker.set_entries(entries)
            self._devices = found
            self._preselect()
            if not self._serves_live:
                # others open a device's live chart here from now on (a request made
                # while the devices were loading included)
                self._serves_live = True
                unregister = context.navigation.register("live", self.show_live)
                self.destroyed.connect(lambda *_: unregister())

        self._background.start(devices, done, lambda _exc: None, key="devices")

    def _preselect(self) -> None:
        """Live or History opened with nothing chosen: start on a sensible
        device (and its preferred metric) instead of a blank chart. Done when
        the tab is shown, so a choice made in code first is never replaced."""
        view = self.tabs.currentWidget()
        if view not in (self.live, self.history):
            return
        picker = self.live.picker if view is self.live else self.history.picker
        first = sensible_device(self._devices)
        if first is not None and not picker.selected_devices():
            picker.select([first])

    def show_live(self, device_id: str) -> None:
        """The Live tab with this one device chosen."""
        self.live.picker.select([device_id])
        self.tabs.setCurrentWidget(self.live)

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
