"""The Devices page against a real SQLite store with the EventBus as live feed."""

from __future__ import annotations

import csv
import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from core.model import Alert, Device, DeviceStatus, Reading, Severity
from core.model.events import DeviceChanged, FleetEvent, TelemetryReceived
from plugins.devices.widgets.fleet_model import Col
from tests.gui.devices.conftest import make_devices


def _ids(page) -> list[str]:
    proxy = page.proxy
    return [proxy.index(r, Col.DEVICE_ID).data() for r in range(proxy.rowCount())]


def test_100k_devices_load_and_a_live_burst_updates_rows_without_any_reset(
        qtbot, store, bus, make_page):
    now = datetime.now(UTC)
    store.registry.upsert_many(make_devices(100_000, now=now))
    store.telemetry.write_batch([Reading("dev-000003", "battery_pct", now, 55.0)])
    # How long this takes is bench/console_bench.py's business, not a test's.
    page = make_page(bridge_interval_ms=50)
    assert page.model.rowCount() == 100_000
    assert page.count_label.text() == "100,000 of 100,000"
    assert page.model.index(3, Col.BATTERY).data() == "55"

    resets: list[str] = []
    page.model.modelReset.connect(lambda: resets.append("model"))
    page.proxy.modelReset.connect(lambda: resets.append("proxy"))
    page.model.modelAboutToBeReset.connect(lambda: resets.append("about"))
    changed: list[tuple[int, int]] = []
    page.model.dataChanged.connect(lambda a, b, _roles=(): changed.append((a.row(), b.row())))
    inserted: list[tuple[int, int]] = []
    page.model.rowsInserted.connect(lambda _p, a, b: inserted.append((a, b)))

    ts = now + timedelta(seconds=5)
    events: list[FleetEvent] = []
    for i in range(9_990):
        device_id = f"dev-{(i * 7) % 100_000:06d}"
        events.append(TelemetryReceived(device_id, (
            Reading(device_id, "battery_pct", ts, float(i % 100)),
            Reading(device_id, "rssi", ts, -40.0 - i % 50)), seq=i))
    flipped = replace(store.registry.get("dev-000010"), status=DeviceStatus.ERROR)
    events += [DeviceChanged(Device(
        f"new-{i}", name=f"Fresh {i}", device_type="pump", status=DeviceStatus.ONLINE))
        for i in range(9)]
    events.append(DeviceChanged(flipped))
    assert len(events) == 10_000

    worker = threading.Thread(target=lambda: [bus.publish(events[i:i + 100])
                                              for i in range(0, len(events), 100)])
    batches_before = page.bridge.batches_emitted
    burst_started = time.monotonic()
    worker.start()
    qtbot.waitUntil(lambda: not worker.is_alive(), timeout=30_000)
    qtbot.waitUntil(lambda: page.bridge.pending() == 0
                    and page.model.rowCount() == 100_009, timeout=30_000)
    burst_ms = (time.monotonic() - burst_started) * 1000
    QApplication.processEvents()

    assert resets == []
    assert changed, "rows changed through dataChanged"
    assert len(changed) < 10_000  # contiguous rows are grouped into ranges
    assert sum(end - start + 1 for start, end in changed) >= 9_000
    assert inserted == [(100_000, 100_008)]
    # at most one batch per 50 ms tick, however many messages arrived
    assert page.bridge.batches_emitted - batches_before <= burst_ms / 50 + 2
    model = page.model
    row = model.row_of("dev-000007")  # i == 1
    assert model.index(row, Col.BATTERY).data() == "1"
    assert model.index(row, Col.RSSI).data() == "-41"
    assert model.index(model.row_of("dev-000010"), Col.STATUS).data() == "critical"
    assert page.count_label.text() == "100,009 of 100,009"


def _small_fleet(store, n: int = 30) -> list[Device]:
    devices = make_devices(n)
    store.registry.upsert_many(devices)
    return devices


def test_search_and_each_filter_narrow_the_rows(qtbot, store, make_page):
    devices = _small_fleet(store)
    page = make_page()
    assert len(_ids(page)) == 30

    qtbot.keyClicks(page.search, "Device 12")  # every word must match somewhere
    expected = ["dev-000012"]
    assert _ids(page) == expected
    assert page.count_label.text() == f"{len(expected)} of 30"
    page.search.clear()
    page.search.setText("roof")  # a tag
    assert _ids(page) == sorted(d.device_id for d in devices if "roof" in d.tags)
    page.search.setText("NORTH roof")  # organization AND tag, any case
    assert _ids(page) == sorted(d.device_id for d in devices if d.organization == "north"
                                and "roof" in d.tags)
    page.search.setText("site 3")  # location label
    assert {"dev-000003", "dev-000010", "dev-000017", "dev-000024"} <= set(_ids(page))
    page.search.clear()

    checks = {
        "status": ({"error", "warning"}, lambda d: d.status.value in {"error", "warning"}),
        "type": ({"pump"}, lambda d: d.device_type == "pump"),
        "tag": ({"hall-a"}, lambda d: "hall-a" in d.tags),
        "organization": ({"north"}, lambda d: d.organization == "north"),
        "firmware": ({"1.10.0"}, lambda d: d.firmware_version == "1.10.0"),
    }
    for kind, (values, keep) in checks.items():
        assert set(values) <= set(page.filter_options(kind)), kind
        page.set_filter(kind, values)
        assert _ids(page) == sorted(d.device_id for d in devices if keep(d)), kind
        page.set_filter(kind, set())
    # filters combine
    page.set_filter("type", {"pump"})
    page.set_filter("organization", {"north"})
    assert _ids(page) == sorted(d.device_id for d in devices
                                if d.device_type == "pump" and d.organization == "north")
    assert page.filter_options("firmware") == ["1.4.2", "1.5.0", "1.10.0"]  # version order

    # the filter menus are built from the data and toggle the filter
    page.clear_filters()
    page._fill_filter_menu("status")
    action = next(a for a in page.filter_menus["status"].actions() if a.text() == "error")
    action.setChecked(True)
    assert _ids(page) == sorted(d.device_id for d in devices if d.status.value == "error")
    assert "error" in page.filter_buttons["status"].text()

    # empty state when nothing matches
    page.search.setText("no-such-device")
    assert page.proxy.rowCount() == 0
    assert page.table_stack.currentIndex() == 1
    assert "No devices match" in page.empty_label.text()
    page.empty_clear_button.click()
    assert page.proxy.rowCount() == 30 and page.table_stack.currentIndex() == 0


def test_empty_fleet_shows_the_empty_state(qtbot, make_page):
    page = make_page()
    assert page.table_stack.currentIndex() == 1
    assert "No devices registered yet" in page.empty_label.text()
    assert page.count_label.text() == "0 of 0"


def test_numeric_columns_sort_as_numbers(qtbot, store, make_page):
    now = datetime.now(UTC)
    store.registry.upsert_many([
        Device("a", last_seen=now - timedelta(seconds=5)),
        Device("b", last_seen=now - timedelta(seconds=100)),
        Device("c", last_seen=now - timedelta(seconds=30)),
        Device("d"),
    ])
    store.telemetry.write_batch([
        Reading("a", "battery_pct", now, 100.0), Reading("b", "battery_pct", now, 9.0),
        Reading("c", "battery_pct", now, 45.5),
        Reading("a", "rssi", now, -100.0), Reading("b", "rssi", now, -9.0),
        Reading("c", "rssi", now, -45.0),
    ])
    for _ in range(3):
        store.alerts.add(Alert("c", "r", Severity.WARNING, "m"))
    store.alerts.add(Alert("a", "r", Severity.WARNING, "m"))
    page = make_page()

    page.table.sortByColumn(Col.BATTERY, Qt.SortOrder.AscendingOrder)
    assert _ids(page) == ["d", "b", "c", "a"]  # 9 < 45.5 < 100, not "100" < "45.5" < "9"
    page.table.sortByColumn(Col.BATTERY, Qt.SortOrder.DescendingOrder)
    assert _ids(page) == ["a", "c", "b", "d"]
    page.table.sortByColumn(Col.RSSI, Qt.SortOrder.DescendingOrder)
    assert _ids(page) == ["b", "c", "a", "d"]
    page.table.sortByColumn(Col.ALERTS, Qt.SortOrder.DescendingOrder)
    assert _ids(page)[:2] == ["c", "a"]
    assert page.proxy.index(0, Col.ALERTS).data() == "3"
    page.table.sortByColumn(Col.LAST_SEEN, Qt.SortOrder.DescendingOrder)
    assert _ids(page) == ["a", "c", "b", "d"]
    assert page.proxy.index(0, Col.LAST_SEEN).data().endswith("s ago")
    assert page.proxy.index(0, Col.LAST_SEEN).data(Qt.ItemDataRole.ToolTipRole)
    assert page.proxy.index(3, Col.LAST_SEEN).data() == "never"
    for col in Col:  # every column sorts, both ways
        for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
            page.table.sortByColumn(col, order)
            assert sorted(_ids(page)) == ["a", "b", "c", "d"]


def test_saved_filter_round_trip(qtbot, store, make_page, tmp_path):
    _small_fleet(store)
    page = make_page()
    page.search.setText("device")
    page.set_filter("type", {"pump", "tracker"})
    page.set_filter("status", {"online"})
    wanted = page.filter_state().to_dict()
    shown = _ids(page)
    page.save_filter("Online pumps")
    path = tmp_path / "config" / "saved_filters.json"
    assert json.loads(path.read_text())["Online pumps"] == wanted

    page.clear_filters()
    assert len(_ids(page)) == 30
    page.apply_saved_filter("Online pumps")
    assert page.filter_state().to_dict() == wanted
    assert page.search.text() == "device"
    assert _ids(page) == shown

    again = make_page()  # another page (a restart) finds it in the file
    assert [again.saved_combo.itemText(i) for i in range(again.saved_combo.count())][1:] == [
        "Online pumps"]
    again.saved_combo.setCurrentIndex(1)
    again.saved_combo.activated.emit(1)
    assert _ids(again) == shown
    again.delete_saved_filter("Online pumps")
    assert json.loads(path.read_text()) == {}


def test_csv_export_equals_the_visible_rows(qtbot, store, make_page, tmp_path):
    devices = _small_fleet(store)
    page = make_page()
    page.set_filter("organization", {"north"})
    page.table.sortByColumn(Col.NAME, Qt.SortOrder.DescendingOrder)
    out = tmp_path / "export.csv"
    assert page.export_csv(out) == 15
    with open(out, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:3] == ["Status", "Device", "Name"]
    assert [r[1] for r in rows[1:]] == _ids(page)
    assert [r[2] for r in rows[1:]] == [page.proxy.index(i, Col.NAME).data()
                                        for i in range(page.proxy.rowCount())]
    by_id = {d.device_id: d for d in devices}
    first = rows[1]
    assert first[5] == by_id[first[1]].firmware_version
    assert datetime.fromisoformat(first[6]) == by_id[first[1]].last_seen.replace(microsecond=0)


def test_keyboard_ctrl_f_enter_and_f5(qtbot, store, make_page):
    _small_fleet(store, 5)
    page = make_page()
    page.activateWindow()  # shortcuts answer only in the active window
    qtbot.waitUntil(page.isActiveWindow)
    page.table.setFocus()
    qtbot.keyClick(page, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert page.search.hasFocus()
    page.table.setFocus()
    page.table.selectRow(2)
    qtbot.keyClick(page.table, Qt.Key.Key_Return)
    assert page.detail.isVisible()
    assert page.detail.device_id == "dev-000002"
    store.registry.upsert(Device("zz-late", name="late"))
    qtbot.keyClick(page.table, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: page.model.rowCount() == 6, timeout=10_000)
