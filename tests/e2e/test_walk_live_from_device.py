"""A technician goes from a device to its live chart, and finds devices on
Analytics by the names people use, in the real window on the local profile."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt

from tests.e2e.test_first_hour import click
from tests.e2e.test_walk_technician import PUMP, PUMP_NAME, _open_pump
from tests.e2e.walk import Console, console_fixture  # noqa: F401 - the console fixture

pytestmark = [pytest.mark.e2e, pytest.mark.gui]

WAIT = 30_000


def test_live_chart_opens_from_the_device_and_the_picker_lists_names(
        console: Console, qtbot: Any) -> None:
    window = console.window
    qtbot.waitUntil(lambda: bool(console.backend.telemetry.latest(PUMP)), timeout=60_000)
    detail = _open_pump(qtbot, console)
    qtbot.waitUntil(detail.live_button.isEnabled, timeout=WAIT)
    assert "Ctrl+L" in detail.live_button.toolTip()
    click(qtbot, detail.live_button)
    qtbot.waitUntil(lambda: window.current_page_id() == "analytics", timeout=WAIT)
    analytics: Any = window.page_widget("analytics")
    qtbot.waitUntil(lambda: analytics.tabs.currentWidget() is analytics.live, timeout=WAIT)
    live = analytics.live
    qtbot.waitUntil(lambda: live.picker.selected_devices() == [PUMP], timeout=WAIT)
    qtbot.waitUntil(lambda: {device for device, _metric in live.keys()} == {PUMP},  # noqa: SIM118
                    timeout=WAIT)
    qtbot.waitUntil(lambda: sum(len(s.value) for s in live.visible_series()) >= 3,
                    timeout=WAIT)
    console.shot("technician-7-live-from-device")

    # The picker shows names next to ids, and finds the pump by its name.
    assert f"{PUMP_NAME} · {PUMP}" in live.picker.device_labels()
    live.picker.filter.setText(PUMP_NAME.lower())
    shown = [live.picker.devices.item(i).text() for i in range(live.picker.devices.count())
             if not live.picker.devices.item(i).isHidden()]
    assert shown == [f"{PUMP_NAME} · {PUMP}"], shown
    live.picker.filter.clear()

    # Back on the device, Ctrl+L does the same.
    window.show_page("devices")
    other = live.picker.device_names()[0]
    live.picker.select([other])
    qtbot.waitUntil(lambda: detail.isVisible(), timeout=WAIT)
    window.activateWindow()  # shortcuts answer only in the active window
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT)
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.current_page_id() == "analytics"
                    and live.picker.selected_devices() == [PUMP], timeout=WAIT)
