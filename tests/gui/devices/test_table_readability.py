"""What the Devices table and detail show a person: a name for every device
(its registered name, else a stand-in from type and number), headers that
are not clipped, RSSI in whole dBm, one latency per ping, and a restart as a
hole in the sparkline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from PySide6.QtCore import Qt

from console.widgets.column_room import HEADER_PADDING_PX
from core.model import CommandRecord, CommandStatus, Device, DeviceStatus, Reading
from core.model.events import CommandChanged
from plugins.devices.widgets.fleet_model import Col, fallback_name
from plugins.devices.widgets.panel_text import format_value
from plugins.devices.widgets.sparkline import with_gaps


def _fleet(store) -> None:
    now = datetime.now(UTC)
    store.registry.upsert_many([
        Device("env-00003", device_type="environmental", status=DeviceStatus.ONLINE,
               last_seen=now),
        Device("meter-00012", device_type="power_meter", status=DeviceStatus.ONLINE),
        Device("pump-1", name="North pump", device_type="pump", status=DeviceStatus.ONLINE),
        Device("gateway", device_type="generic"),
    ])
    store.telemetry.write_batch([Reading("env-00003", "rssi", now, -70.53)])


def _cell(page, device_id: str, col: Col, role=Qt.ItemDataRole.DisplayRole):
    row = page.model.row_of(device_id)
    assert row is not None
    return page.model.index(row, col).data(role)


def test_devices_without_a_name_get_a_readable_stand_in(qtbot, store, make_page):
    _fleet(store)
    page = make_page()
    assert _cell(page, "pump-1", Col.NAME) == "North pump"
    assert _cell(page, "env-00003", Col.NAME) == "Environmental 3"
    assert _cell(page, "meter-00012", Col.NAME) == "Power meter 12"
    assert _cell(page, "gateway", Col.NAME) == "gateway"
    # Marked as a stand-in, and not exported as if it were registered.
    assert _cell(page, "env-00003", Col.NAME, Qt.ItemDataRole.FontRole).italic()
    assert "No name registered" in _cell(page, "env-00003", Col.NAME,
                                         Qt.ItemDataRole.ToolTipRole)
    assert _cell(page, "pump-1", Col.NAME, Qt.ItemDataRole.FontRole) is None
    assert page.model.export_value(page.model.row_of("env-00003"), Col.NAME) == ""
    # and found by it
    page.search.setText("environmental 3")
    qtbot.waitUntil(lambda: page.proxy.rowCount() == 1, timeout=5_000)
    assert fallback_name(Device("trk-7", device_type="tracker")) == "Tracker 7"


def test_headers_are_not_clipped(qtbot, store, make_page):
    _fleet(store)
    page = make_page()
    header = page.table.horizontalHeader()
    metrics = header.fontMetrics()
    for col in Col:
        text = page.model.headerData(col, Qt.Orientation.Horizontal)
        if col is Col.NAME:
            continue  # stretches
        assert page.table.columnWidth(col) >= metrics.horizontalAdvance(text) + \
            HEADER_PADDING_PX, text
    assert page.table.columnWidth(Col.ALERTS) >= metrics.horizontalAdvance("Active alerts") + 30


def test_rssi_reads_in_whole_dbm(qtbot, store, make_page):
    _fleet(store)
    page = make_page()
    assert _cell(page, "env-00003", Col.RSSI) == "-71"
    assert page.show_device("env-00003")
    detail = page.detail
    qtbot.waitUntil(lambda: detail.loaded_device_id == "env-00003", timeout=10_000)
    qtbot.waitUntil(lambda: "rssi" in detail.overview.value_metrics(), timeout=10_000)
    assert detail.overview._value_rows["rssi"].value.text() == "-71 dBm"
    assert format_value("temperature", 21.456) == "21.46"


def test_ping_shows_one_latency_in_the_banner_and_the_table(qtbot, store, make_page):
    _fleet(store)
    page = make_page()
    assert page.show_device("pump-1")
    detail = page.detail
    qtbot.waitUntil(lambda: detail.loaded_device_id == "pump-1", timeout=10_000)
    detail.commands.ping_button.click()
    qtbot.waitUntil(lambda: "ping: ok" in detail.commands.command_status.text(), timeout=15_000)
    assert detail.commands.command_status.text() == "ping: ok in 12 ms"
    (request_id,) = detail.commands._latency
    # The stored record (what the hub saw) arrives afterwards with its own times.
    created = datetime.now(UTC)
    record = CommandRecord(request_id, "pump-1", "ping", status=CommandStatus.OK,
                           created_at=created, completed_at=created + timedelta(milliseconds=4))
    page.apply_events([CommandChanged(record)])
    assert ("ping", "ok", "12 ms") in detail.commands.command_rows()


def test_a_restart_is_a_hole_in_the_sparkline() -> None:
    x = np.array([0.0, 5, 10, 15, 60, 65, 70])
    y = np.arange(7, dtype=float)
    gx, gy = with_gaps(x, y)
    assert gx.size == 8 and np.isnan(gy[4]) and 15 < gx[4] < 60
    steady_x, _ = with_gaps(np.array([0.0, 5, 10, 16, 20]), np.zeros(5))
    assert steady_x.size == 5, "jitter is not a gap"


def test_last_seen_follows_the_newest_reading_not_the_batched_registry(qtbot, store,
                                                                         make_page):
    """The hub writes last_seen back every 30 s (plus its 5 s housekeeping), so
    the stored value can be 35 s old for a device that reports every 5 s; the
    detail takes the newest reading instead and counts up between readings."""
    now = datetime.now(UTC)
    store.registry.upsert_many([Device("env-00001", device_type="environmental",
                                       status=DeviceStatus.ONLINE,
                                       last_seen=now - timedelta(seconds=35))])
    store.telemetry.write_batch([Reading("env-00001", "temperature",
                                         now - timedelta(seconds=2), 21.0)])
    page = make_page()
    assert page.show_device("env-00001")
    detail = page.detail
    qtbot.waitUntil(lambda: detail.loaded_device_id == "env-00001", timeout=10_000)
    label = detail.overview.info_labels["last_seen"]
    age = int(label.text().split()[0])
    assert age <= 3, label.text()
    qtbot.waitUntil(lambda: int(label.text().split()[0]) > age, timeout=5_000)
    # The list repaints its ages every second, not every 5 s.
    assert page._clock.interval() <= 1000


def test_a_status_change_without_a_live_event_still_reaches_the_list(qtbot, store,
                                                                     make_page):
    """The demo's devices come online before the page subscribes to live
    events, and the hub writes the registry back a few seconds later: the
    list re-reads the registry and shows them online, without F5."""
    store.registry.upsert_many([Device("env-00001", device_type="environmental",
                                       status=DeviceStatus.OFFLINE)])
    page = make_page()
    assert _cell(page, "env-00001", Col.STATUS) == "offline"
    resets: list[int] = []
    page.model.modelReset.connect(lambda: resets.append(1))
    page._sync_timer.setInterval(200)  # every 10 s in the product
    store.registry.upsert_many([Device("env-00001", device_type="environmental",
                                       status=DeviceStatus.ONLINE,
                                       last_seen=datetime.now(UTC))])
    qtbot.waitUntil(lambda: _cell(page, "env-00001", Col.STATUS) == "online", timeout=10_000)
    assert resets == [], "updated in place, not reloaded"
    # Hidden (another page shown), it does not re-read; shown again, it catches up at once.
    page._sync_timer.setInterval(600_000)
    page.hide()
    store.registry.upsert_many([Device("env-00001", device_type="environmental",
                                       status=DeviceStatus.WARNING,
                                       last_seen=datetime.now(UTC))])
    page.show()
    qtbot.waitUntil(lambda: _cell(page, "env-00001", Col.STATUS) == "warning", timeout=10_000)


def test_a_large_re_read_reaches_the_list_in_slices_the_window_paints_between(
        qtbot, store, make_page):
    """A re-read of 2,500 devices is compared with the table a slice at a time,
    with the event loop turning between slices (at 10,000 devices one pass
    held the window 26-40 ms every period), and every change still arrives."""
    from PySide6.QtCore import QTimer

    from plugins.devices.widgets.devices_page import SYNC_SLICE

    devices = [Device(f"big-{i:05d}", device_type="environmental", name=f"sensor {i}")
               for i in range(2_500)]
    store.registry.upsert_many(devices)
    page = make_page()
    assert page.model.rowCount() == 2_500
    slices: list[int] = []
    turns: list[int] = []
    original = page.model.sync_devices

    def spy(found):
        slices.append(len(found))
        return original(found)

    page.model.sync_devices = spy
    ticker = QTimer()
    ticker.timeout.connect(lambda: turns.append(len(slices)))
    ticker.start(0)
    store.registry.upsert_many([Device(d.device_id, device_type="environmental",
                                       name=f"renamed {i}") for i, d in enumerate(devices)])
    page._sync_registry()
    qtbot.waitUntil(lambda: _cell(page, "big-02499", Col.NAME) == "renamed 2499",
                    timeout=20_000)
    ticker.stop()
    assert slices == [SYNC_SLICE, SYNC_SLICE, 2_500 - 2 * SYNC_SLICE]
    # the event loop served other work between the slices
    assert {1, 2} <= set(turns)
    assert all(_cell(page, d.device_id, Col.NAME) == f"renamed {i}"
               for i, d in enumerate(devices))
