"""The devices table's mechanisms for a large live fleet: one batch shows what
event-by-event updates show, sorting by precomputed keys gives the right rows
at 100,000 devices, and the filter follows a change of status or firmware
without re-filtering on every reading."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt

from core.model import DeviceStatus, Reading
from core.model.events import DeviceChanged, FleetEvent, TelemetryReceived
from plugins.devices.widgets.fleet_model import (
    Col,
    DeviceFilterProxy,
    FilterState,
    FleetTableModel,
)
from tests.gui.devices.conftest import make_devices

pytestmark = pytest.mark.gui

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def _table(model: FleetTableModel) -> list[list[str]]:
    return [[model.data(model.index(r, c)) for c in range(model.columnCount())]
            for r in range(model.rowCount())]


def _stream(n_devices: int, messages: int) -> list[FleetEvent]:
    events: list[FleetEvent] = []
    for i in range(messages):
        device_id = f"dev-{(i * 37) % n_devices:06d}"
        ts = NOW + timedelta(seconds=i // n_devices, milliseconds=i % 997)
        events.append(TelemetryReceived(device_id, (
            Reading(device_id, "battery_pct", ts, float((i * 13) % 100)),
            Reading(device_id, "rssi", ts, -40.0 - i % 50)),
            seq=i, firmware="2.0.0" if i % 501 == 0 else ""))
    return events


def test_one_batch_shows_the_same_table_as_event_by_event(qtbot):
    devices = make_devices(2_000, now=NOW)
    events = _stream(2_000, 6_000)
    one_by_one, batched = FleetTableModel(), FleetTableModel()
    for model in (one_by_one, batched):
        model.now_s = lambda: NOW.timestamp() + 10
        model.load(devices)
    spans: list[tuple[int, int]] = []
    batched.dataChanged.connect(lambda a, b, _r=(): spans.append((a.row(), b.row())))
    for event in events:
        one_by_one.apply_events([event])
    batched.apply_events(events)

    assert _table(batched) == _table(one_by_one)
    # the rows that changed are covered by the one signal of the batch
    assert len(spans) == 1 and spans[0][0] == 0 and spans[0][1] == 1_999


def _expected_order(devices, key, reverse):
    by_id = sorted(devices, key=lambda d: d.device_id)
    return [d.device_id for d in sorted(by_id, key=key, reverse=reverse)]


@pytest.fixture(scope="module")
def fleet_100k():
    return make_devices(100_000, now=NOW)


@pytest.mark.parametrize("order", [Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder])
def test_sorting_100k_rows_gives_the_right_order_with_ties_by_device_id(qtbot, order, fleet_100k):
    devices = fleet_100k
    model = FleetTableModel()
    # many ties in battery (100 values), some devices without a reading at all
    latest = {d.device_id: {"battery_pct": float(i % 100)}
              for i, d in enumerate(devices) if i % 9}
    model.load(devices, latest)
    reverse = order == Qt.SortOrder.DescendingOrder

    model.sort(int(Col.BATTERY), order)
    values = {d: v["battery_pct"] for d, v in latest.items()}
    want = _expected_order(devices, lambda d: values.get(d.device_id, -math.inf), reverse)
    assert [r.device.device_id for r in model.rows()] == want
    assert [model.row_of(d) for d in want] == list(range(len(want)))  # the id index too

    model.sort(int(Col.NAME), order)
    assert [r.device.device_id for r in model.rows()] == _expected_order(
        devices, lambda d: d.name.lower(), reverse)

    model.sort(int(Col.LAST_SEEN), order)
    assert [r.device.device_id for r in model.rows()] == _expected_order(
        devices, lambda d: d.last_seen.timestamp(), reverse)


def test_a_selected_row_follows_its_device_through_a_sort(qtbot):
    model = FleetTableModel()
    model.load(make_devices(1_000, now=NOW))
    from PySide6.QtCore import QPersistentModelIndex

    held = QPersistentModelIndex(model.index(model.row_of("dev-000123") or 0, 2))
    model.sort(int(Col.LAST_SEEN), Qt.SortOrder.DescendingOrder)
    assert model.device(held.row()).device_id == "dev-000123" and held.column() == 2


def test_filters_on_100k_rows_keep_exactly_the_matching_rows(qtbot, fleet_100k):
    devices = fleet_100k
    model, proxy = FleetTableModel(), DeviceFilterProxy()
    proxy.setSourceModel(model)
    model.load(devices)

    proxy.set_text("roof")
    got = {proxy.device(r).device_id for r in range(proxy.rowCount())}
    assert got == {d.device_id for d in devices if "roof" in d.tags}

    proxy.set_state(FilterState(statuses={"offline"}, types={"pump"}))
    got = {proxy.device(r).device_id for r in range(proxy.rowCount())}
    assert got == {d.device_id for d in devices
                   if d.status is DeviceStatus.OFFLINE and d.device_type == "pump"}
    model.sort(int(Col.NAME), Qt.SortOrder.DescendingOrder)
    assert [proxy.device(r).device_id for r in range(proxy.rowCount())] == [
        d for d in _expected_order(devices, lambda d: d.name.lower(), True) if d in got]


def test_the_filter_follows_a_status_change_but_not_every_reading(qtbot):
    devices = make_devices(50, now=NOW)
    model, proxy = FleetTableModel(), DeviceFilterProxy()
    proxy.setSourceModel(model)
    model.load(devices)
    proxy.set_state(FilterState(statuses={"offline"}))
    offline = {proxy.device(r).device_id for r in range(proxy.rowCount())}
    assert offline and "dev-000002" in offline
    refilters: list[int] = []
    proxy.layoutChanged.connect(lambda *_: refilters.append(1))

    # readings change numbers, never what the filter takes: no re-filter, but
    # the filtered rows show the new value
    ts = NOW + timedelta(seconds=30)
    model.apply_events([TelemetryReceived(d, (Reading(d, "battery_pct", ts, 7.0),))
                        for d in offline])
    qtbot.wait(DeviceFilterProxy.REFILTER_MS + 100)
    assert refilters == []
    row = next(r for r in range(proxy.rowCount()) if proxy.device(r).device_id == "dev-000002")
    assert proxy.data(proxy.index(row, int(Col.BATTERY))) == "7"

    # the device comes online: it leaves the "offline" view by itself
    back = replace(next(d for d in devices if d.device_id == "dev-000002"),
                   status=DeviceStatus.ONLINE)
    model.apply_events([DeviceChanged(back)])
    qtbot.waitUntil(lambda: proxy.rowCount() == len(offline) - 1, timeout=5_000)
    assert "dev-000002" not in {proxy.device(r).device_id for r in range(proxy.rowCount())}


def test_a_new_firmware_in_telemetry_reaches_a_firmware_search(qtbot):
    devices = make_devices(20, now=NOW)
    model, proxy = FleetTableModel(), DeviceFilterProxy()
    proxy.setSourceModel(model)
    model.load(devices)
    proxy.set_text("9.9.9")
    assert proxy.rowCount() == 0
    model.apply_events([TelemetryReceived("dev-000004", (
        Reading("dev-000004", "battery_pct", NOW, 50.0),), firmware="9.9.9")])
    qtbot.waitUntil(lambda: proxy.rowCount() == 1, timeout=5_000)
    assert proxy.device(0).device_id == "dev-000004"
