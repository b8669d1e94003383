"""The real window with the real built-in plugins and a pip-installed third-party
plugin: its page appears, the broken one is shown disabled, the app keeps running."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from core.context import AppContext
from core.model import Device, DeviceStatus
from core.plugins import PluginManager
from core.store import Store


@pytest.fixture
def quiet_config(config):
    """The real local backend on its own embedded broker, without the demo fleet: the
    session broker holds other tests' retained statuses, and the hub would register
    those devices too."""
    profile = dataclasses.replace(config.profile, broker="embedded", demo_fleet=False)
    return dataclasses.replace(config, profiles={**config.profiles, "local": profile})


def test_third_party_page_appears_and_broken_plugin_is_listed(
    installed_plugins, quiet_config, make_window, qtbot
):
    config = quiet_config
    context = AppContext(config, PluginManager(entry_points=True, blocked=()))
    window = make_window(context, show=True)
    assert window.page_ids() == ["devices", "alerts", "rejected", "firmware", "analytics",
                                 "audit", "users", "example"]
    window.show_page("example")
    label = window.page_widget("example")
    assert isinstance(label, QLabel) and label.objectName() == "examplePluginLabel"
    assert label.text() == "Hello from the example plugin"

    dialog = window.open_plugins_dialog()
    qtbot.addWidget(dialog)
    broken = dialog.row_of("broken")
    assert dialog.cell_text(broken, "Status") == "failed"
    assert "ModuleNotFoundError" in dialog.cell_text(broken, "Error")
    assert "smartiot_dependency_that_is_not_installed" in dialog.cell_text(broken, "Error")
    example = dialog.row_of("example")
    assert dialog.cell_text(example, "Status") == "loaded"
    assert dialog.cell_text(example, "Version") == "1.2.3"
    dialog.close()
    context.close()


def test_devices_page_lists_devices_from_the_local_store(quiet_config, make_window, qtbot):
    config = quiet_config
    with Store.open(config.database_url) as store:
        store.registry.upsert_many([
            Device("pump-001", name="North pump", device_type="pump",
                   status=DeviceStatus.ONLINE),
            Device("meter-002", name="Main meter", device_type="power_meter",
                   status=DeviceStatus.ERROR),
        ])
    context = AppContext(config, PluginManager(entry_points=False, blocked=()))
    window = make_window(context, show=True)
    window.show_page("devices")
    page = window.page_widget("devices")
    qtbot.waitUntil(lambda: page.model.rowCount() == 2, timeout=10_000)
    proxy = page.proxy
    ids = [proxy.index(r, 1).data() for r in range(proxy.rowCount())]
    assert ids == ["meter-002", "pump-001"]  # sorted by device id
    assert proxy.index(0, 0).data(Qt.ItemDataRole.ForegroundRole).name() == "#dc2626"
    qtbot.keyClicks(page.search, "north")
    assert proxy.rowCount() == 1 and proxy.index(0, 1).data() == "pump-001"
    assert page.count_label.text() == "1 of 2"
    context.close()


def test_dashboard_counts_match_the_store(quiet_config, make_window, qtbot):
    config = quiet_config
    with Store.open(config.database_url) as store:
        store.registry.upsert_many([
            Device(f"env-{i}", device_type="environmental",
                   status=DeviceStatus.ONLINE if i % 3 else DeviceStatus.WARNING)
            for i in range(9)
        ])
    context = AppContext(config, PluginManager(entry_points=False, blocked=()))
    window = make_window(context, show=True)
    window.show_page("analytics")
    page = window.page_widget("analytics")
    qtbot.waitUntil(lambda: page.cards["total"].value_label.text() == "9", timeout=10_000)
    assert page.cards["online"].value_label.text() == "6"
    assert page.cards["warning"].value_label.text() == "3"
    assert page.by_type_plot.isVisible()
    context.close()


def test_page_shows_backend_error_instead_of_crashing(quiet_config, make_window, qtbot,
                                                      tmp_path):
    config = quiet_config
    broken_db = f"sqlite:///{tmp_path}/file-not-dir"
    (tmp_path / "file-not-dir").write_text("this is not a database")
    bad = dataclasses.replace(
        config,
        profiles={**config.profiles,
                  "local": dataclasses.replace(config.profile, database=broken_db)},
    )
    context = AppContext(bad, PluginManager(entry_points=False, blocked=()))
    window = make_window(context, show=True)
    window.show_page("alerts")
    page = window.page_widget("alerts")
    qtbot.waitUntil(lambda: page.status_label.text().startswith("Could not load"), timeout=10_000)
    assert page.refresh_button.isEnabled()
