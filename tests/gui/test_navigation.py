"""Plugins open each other's pages through the window's navigation service
(core/ports/navigation.py, console/navigator.py): a page declares targets, the
shell builds it on request, and a request made before the page can serve it is
delivered when the page registers, without polling."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QLabel

from core.model import Device
from core.ports.backend import Backend
from core.ports.navigation import NoNavigation
from tests.gui.alerts.conftest import BackendPlugin, bus, db_url, store
from tests.gui.conftest import page, pages_plugin

pytestmark = pytest.mark.gui

__all__ = ["bus", "db_url", "store"]


def test_a_request_before_the_page_serves_it_is_delivered_when_it_registers(
        make_context, make_window):
    built: list[QLabel] = []

    def things(_context):
        built.append(QLabel("things"))
        return built[-1]

    context = make_context(pages_plugin([page("home", 1),
                                         page("things", 2, factory=things, targets=("thing",))]))
    window = make_window(context)
    navigation = context.navigation
    assert window.current_page_id() == "home" and not built

    assert navigation.open("thing", "t-1")
    assert window.current_page_id() == "things" and len(built) == 1  # built on request
    assert navigation.pending() == {"thing": "t-1"}  # the page has not registered yet

    opened: list[str] = []
    unregister = navigation.register("thing", opened.append)  # e.g. once its data loaded
    assert opened == ["t-1"] and navigation.pending() == {}

    window.show_page("home")
    assert navigation.open("thing", "t-2")
    assert opened == ["t-1", "t-2"] and window.current_page_id() == "things"

    assert navigation.open("home") and window.current_page_id() == "home"
    assert not navigation.open("nobody-serves-this", "x")
    unregister()
    assert navigation.open("thing", "t-3") and opened == ["t-1", "t-2"]
    assert navigation.pending() == {"thing": "t-3"}


def test_without_a_window_nothing_opens(make_context):
    context = make_context()
    assert isinstance(context.navigation, NoNavigation)
    assert not context.navigation.open("device", "pump-1")


def test_analytics_opens_a_device_on_the_devices_page_while_it_is_still_loading(
        make_context, make_window, qtbot, store, bus):
    import plugins.devices.plugin as devices_plugin
    from plugins.analytics.widgets.device_link import open_device_detail

    store.registry.upsert_many([Device(f"pump-{i}", device_type="pump") for i in range(5)])
    backend = Backend(name="local", registry=store.registry, alerts=store.alerts,
                      telemetry=store.telemetry, live=bus, rules=store.rules)
    context = make_context(("test-backend", BackendPlugin(backend)),
                           pages_plugin([page("home", 1)]), ("devices", devices_plugin))
    window = make_window(context, show=True)
    assert window.current_page_id() == "home"

    # the Devices page does not exist yet; it is built now and loads in the background
    assert open_device_detail(context, "pump-3")
    devices = window.page_widget("devices")
    assert window.current_page_id() == "devices" and devices.model.rowCount() == 0
    qtbot.waitUntil(lambda: devices.detail.device_id == "pump-3", timeout=20_000)
    assert devices.detail.isVisible()

    window.show_page("home")
    assert open_device_detail(context, "pump-1")  # served at once now
    assert window.current_page_id() == "devices" and devices.detail.device_id == "pump-1"
