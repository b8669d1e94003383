"""The dashboard refreshes every 15 s while it is shown and hands the fleet to
the live and history pickers each time. Rebuilding 10,000 items in each held
the window for 0.4-0.85 s every time; now the same fleet changes nothing, a
renamed or changed device changes its own item, and only devices added or
removed rebuild a list, keeping what was chosen."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.model import Device, DeviceStatus
from plugins.analytics.widgets.series_picker import picker_entries

pytestmark = pytest.mark.gui


def _fleet(n: int) -> list[Device]:
    return [Device(f"env-{i:05d}", name=f"Sensor {i}", device_type="environmental",
                   status=DeviceStatus.ONLINE) for i in range(n)]


def _rebuilds(picker) -> list[int]:
    counted: list[int] = []
    picker.devices.model().rowsRemoved.connect(lambda *_: counted.append(1))
    picker.devices.model().modelReset.connect(lambda *_: counted.append(1))
    return counted


def test_the_same_fleet_again_changes_nothing_and_a_change_only_its_item(
        qtbot, analytics_page) -> None:
    picker = analytics_page.live.picker
    fleet = _fleet(10_000)
    picker.set_entries(picker_entries(fleet))
    assert picker.devices.count() == 10_000
    picker.select(["env-00042"])
    first = picker.devices.item(42)
    rebuilds = _rebuilds(picker)

    picker.set_entries(picker_entries(fleet))  # the dashboard's next refresh
    assert rebuilds == [] and picker.devices.item(42) is first

    changed = list(fleet)
    changed[42] = replace(fleet[42], name="Boiler room", status=DeviceStatus.OFFLINE)
    picker.set_entries(picker_entries(changed))
    assert rebuilds == [] and picker.devices.item(42) is first
    assert "Boiler room" in first.text()
    assert "offline" in picker.tooltip_at(picker.devices.visualItemRect(first).center())
    assert picker.selected_devices() == ["env-00042"]

    grown = [*changed, Device("env-10000", device_type="environmental")]
    picker.set_entries(picker_entries(grown))
    assert rebuilds and picker.devices.count() == 10_001
    assert picker.selected_devices() == ["env-00042"]  # the choice survives a rebuild


def test_a_dashboard_refresh_does_not_rebuild_the_pickers(qtbot, analytics_page) -> None:
    pickers = (analytics_page.live.picker, analytics_page.history.picker)
    rebuilds = [_rebuilds(p) for p in pickers]
    dashboard = analytics_page.dashboard
    loads = []
    dashboard.loaded.connect(loads.append)
    dashboard.refresh(quiet=True)
    qtbot.waitUntil(lambda: bool(loads), timeout=20_000)
    qtbot.waitUntil(lambda: not analytics_page._background.is_running("devices"),
                    timeout=20_000)
    assert rebuilds == [[], []]
    assert all(p.devices.count() == 10 for p in pickers)


def test_a_devices_tooltip_and_the_filter_come_from_its_row(qtbot, analytics_page) -> None:
    """The items hold only their labels (one Qt call makes them all); the
    tooltip a person hovers for and the filter read each row's entry."""
    from PySide6.QtCore import QEvent, QPoint
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QApplication, QToolTip

    picker = analytics_page.live.picker
    analytics_page.tabs.setCurrentWidget(analytics_page.live)
    fleet = _fleet(300)
    fleet[7] = replace(fleet[7], name="Boiler room", status=DeviceStatus.OFFLINE)
    picker.set_entries(picker_entries(fleet))
    picker.select(["env-00007", "env-00008"])
    qtbot.waitUntil(lambda: picker.devices.isVisible(), timeout=5_000)
    where = picker.devices.visualItemRect(picker.devices.item(7)).center()
    viewport = picker.devices.viewport()
    QApplication.sendEvent(viewport, QHelpEvent(QEvent.Type.ToolTip, where,
                                                viewport.mapToGlobal(where)))
    assert QToolTip.text() == "Boiler room (environmental, offline)"
    QToolTip.hideText()
    assert picker.tooltip_at(QPoint(-5, -5)) == ""

    picker.filter.setText("OFFLINE")  # a tooltip's word matches too
    assert [i for i in range(300) if not picker.devices.item(i).isHidden()] == [7]
    assert picker.selected_devices() == ["env-00007", "env-00008"]  # hidden, still chosen
    picker.filter.setText("sensor 1")
    shown = [picker.device_labels()[i] for i in range(300)
             if not picker.devices.item(i).isHidden()]
    assert shown and all(label.startswith("Sensor 1") for label in shown)
    assert len(shown) == 1 + 10 + 100  # 1, 10-19, 100-199
    picker.filter.clear()
    assert not any(picker.devices.item(i).isHidden() for i in range(300))
