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


# -- the table as the view sees it (model + proxy) against a plain Python reference --

def _varied(devices):
    """Ties and gaps in every column: some unnamed, some without firmware, a
    pre-release, some with health from alerts."""
    out = []
    for i, d in enumerate(devices):
        if i % 11 == 0:
            d = replace(d, name="")
        if i % 13 == 0:
            d = replace(d, firmware_version=None)
        elif i % 17 == 0:
            d = replace(d, firmware_version="1.10.0-rc.1")
        out.append(d)
    return out


def _reference(rows, col, reverse, state=None):
    """What the table must show: the rows a filter takes (``FilterState.accepts``,
    one call per row), sorted by id, then stably by the column's ``_sort_key``."""
    from plugins.devices.widgets.fleet_model import _sort_key

    terms = [t for t in (state.text.lower().split() if state else []) if t]
    kept = [r for r in rows if state is None or state.accepts(r, terms)]
    by_id = sorted(kept, key=lambda r: r.device.device_id)
    keys = [_sort_key(r, col) for r in by_id]
    order = sorted(range(len(by_id)), key=keys.__getitem__, reverse=reverse)
    return [by_id[i].device.device_id for i in order]


def _shown(proxy):
    """The view's rows, top to bottom (every 101st also through the Qt mapping)."""
    rows = proxy.sourceModel().rows()
    shown = [rows[i].device.device_id for i in proxy.visible_rows()]
    assert len(shown) == proxy.rowCount()
    assert all(proxy.device(r).device_id == shown[r] for r in range(0, len(shown), 101))
    return shown


@pytest.fixture(scope="module")
def loaded_100k(fleet_100k):
    devices = _varied(fleet_100k)
    latest = {d.device_id: {"battery_pct": float(i % 100), "rssi": -40.0 - i % 60}
              for i, d in enumerate(devices) if i % 9}
    alerts = {d.device_id: i % 4 for i, d in enumerate(devices) if i % 5 == 0}
    from core.model import Severity
    worst = {d.device_id: Severity.CRITICAL for i, d in enumerate(devices) if i % 23 == 0}
    model, proxy = FleetTableModel(), DeviceFilterProxy()
    proxy.setSourceModel(model)
    model.load(devices, latest, alerts, worst)
    return model, proxy


@pytest.mark.parametrize("order", [Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder])
def test_every_column_sorts_100k_rows_as_the_reference_does(qtbot, loaded_100k, order):
    model, proxy = loaded_100k
    proxy.set_state(FilterState())
    reverse = order == Qt.SortOrder.DescendingOrder
    for col in Col:
        proxy.sort(int(col), order)
        assert _shown(proxy) == _reference(model.rows(), col, reverse), col.name
        assert all(model.row_of(d) == i for i, d in enumerate(_shown(proxy)[:500]))


FILTERS = [
    FilterState(text="device 12"),
    FilterState(text="roof PUMP"),
    FilterState(statuses={"offline", "error"}),
    FilterState(types={"tracker"}),
    FilterState(tags={"hall-b"}),
    FilterState(firmware={"", "1.10.0-rc.1"}),
    FilterState(text="north", types={"pump"}, tags={"roof"}, firmware={"1.5.0"}),
    FilterState(text="no such device"),
]


@pytest.mark.parametrize("state", FILTERS, ids=lambda s: str(s.to_dict()))
def test_filters_on_100k_rows_show_the_reference_rows_in_order(qtbot, loaded_100k, state):
    model, proxy = loaded_100k
    proxy.set_state(state)
    for col, order in ((Col.RSSI, Qt.SortOrder.DescendingOrder),
                       (Col.FIRMWARE, Qt.SortOrder.AscendingOrder),
                       (Col.STATUS, Qt.SortOrder.DescendingOrder)):
        proxy.sort(int(col), order)
        assert _shown(proxy) == _reference(
            model.rows(), col, order == Qt.SortOrder.DescendingOrder, state)
        # the view's rows map back and forth
        for r in range(0, proxy.rowCount(), 997):
            assert proxy.mapFromSource(proxy.mapToSource(proxy.index(r, 3))).row() == r
    proxy.set_state(FilterState())
    assert proxy.rowCount() == model.rowCount() == 100_000


def test_the_selection_follows_its_device_through_sorts_and_filters(qtbot, fleet_100k):
    from PySide6.QtCore import QItemSelectionModel
    from PySide6.QtWidgets import QTableView

    model, proxy = FleetTableModel(), DeviceFilterProxy()
    proxy.setSourceModel(model)
    model.load(fleet_100k[:20_000])
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    view.setSortingEnabled(True)
    row = proxy.mapFromSource(model.index(model.row_of("dev-000123") or 0, 0)).row()
    view.selectionModel().setCurrentIndex(
        proxy.index(row, 2), QItemSelectionModel.SelectionFlag.ClearAndSelect
        | QItemSelectionModel.SelectionFlag.Rows)

    def selected() -> list[str]:
        return [proxy.device(i.row()).device_id
                for i in view.selectionModel().selectedRows()]

    view.sortByColumn(int(Col.LAST_SEEN), Qt.SortOrder.DescendingOrder)
    assert proxy.device(view.currentIndex().row()).device_id == "dev-000123"
    assert view.currentIndex().column() == 2 and selected() == ["dev-000123"]
    proxy.set_text("device 123")  # still shown, at another row
    assert proxy.rowCount() < 200
    assert proxy.device(view.currentIndex().row()).device_id == "dev-000123"
    assert selected() == ["dev-000123"]
    view.sortByColumn(int(Col.NAME), Qt.SortOrder.DescendingOrder)
    assert selected() == ["dev-000123"]
    proxy.set_state(FilterState())
    assert proxy.device(view.currentIndex().row()).device_id == "dev-000123"
    assert selected() == ["dev-000123"]
    proxy.set_text("dev-000124")  # filtered out: nothing of it is left selected
    assert selected() == [] and not view.currentIndex().isValid()


def test_live_changes_reach_the_next_sort_and_the_filtered_view(qtbot, fleet_100k):
    devices = fleet_100k[:30_000]
    model, proxy = FleetTableModel(), DeviceFilterProxy()
    proxy.setSourceModel(model)
    model.load(devices, {d.device_id: {"battery_pct": 50.0} for d in devices})
    for col in (Col.BATTERY, Col.NAME, Col.STATUS):  # every key array built once
        proxy.sort(int(col), Qt.SortOrder.AscendingOrder)
    proxy.set_state(FilterState(types={"pump"}))
    ts = NOW + timedelta(seconds=60)
    model.apply_events([TelemetryReceived(d.device_id, (
        Reading(d.device_id, "battery_pct", ts, float(i % 7)),)) for i, d in enumerate(devices)
        if i % 3 == 0])
    renamed = replace(devices[8], name="A much longer name than any other device has: " * 3)
    offline = replace(devices[12], status=DeviceStatus.OFFLINE)
    model.upsert_devices([renamed, offline])
    state = proxy.state
    for col, order in ((Col.BATTERY, Qt.SortOrder.DescendingOrder),
                       (Col.NAME, Qt.SortOrder.AscendingOrder),
                       (Col.STATUS, Qt.SortOrder.AscendingOrder),
                       (Col.BATTERY, Qt.SortOrder.AscendingOrder)):
        proxy.sort(int(col), order)
        assert _shown(proxy) == _reference(
            model.rows(), col, order == Qt.SortOrder.DescendingOrder, state), col.name
    assert model.row_data(model.row_of("dev-000000") or 0).battery == 0  # the reading landed
    # a new device appears in the filtered view when it matches
    new = replace(devices[0], device_id="pump-new-1", device_type="pump", name="New pump")
    model.upsert_devices([new])
    assert "pump-new-1" in _shown(proxy)
    proxy.sort(int(Col.NAME), Qt.SortOrder.DescendingOrder)
    assert _shown(proxy) == _reference(model.rows(), Col.NAME, True, state)


class _CountingProxy(DeviceFilterProxy):
    """Counts Qt's calls into the mapping while a view paints."""

    maps = 0

    def mapToSource(self, proxy_index):
        type(self).maps += 1
        return super().mapToSource(proxy_index)


_ROLES = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole,
          Qt.ItemDataRole.FontRole, Qt.ItemDataRole.DecorationRole,
          Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.TextAlignmentRole,
          Qt.ItemDataRole.BackgroundRole, FleetTableModel.SORT_ROLE, FleetTableModel.DEVICE_ROLE)


def _same(value):
    """A pixmap by its cache key (a copy through Qt's variant is another
    Python object of the same pixmap)."""
    from PySide6.QtGui import QPixmap

    return ("pixmap", value.cacheKey()) if isinstance(value, QPixmap) else value


@pytest.mark.parametrize("state", [FilterState(), FilterState(text="hall-a"),
                                   FilterState(statuses={"offline"})],
                         ids=["unfiltered", "text", "status"])
def test_the_view_paints_each_cell_from_its_row_without_mapping_it(qtbot, state):
    """Each painted cell is one call into Python (the proxy reads the fleet's
    row), not Qt's mapToSource, index and data per cell and role: at 10,000
    live devices those calls, each taking the GIL back from the console's
    other threads, were most of the window's stalls. Every cell and role still
    reads as the source's own cell behind it."""
    from PySide6.QtWidgets import QTableView

    devices = _varied(make_devices(300, now=NOW))
    latest = {d.device_id: {"battery_pct": float(i % 40), "rssi": -40.0 - i % 60}
              for i, d in enumerate(devices) if i % 7}
    model, proxy = FleetTableModel(), _CountingProxy()
    model.now_s = lambda: NOW.timestamp() + 10
    proxy.setSourceModel(model)
    model.load(devices, latest, {devices[3].device_id: 2})
    proxy.set_state(state)
    model.sort(Col.BATTERY, Qt.SortOrder.DescendingOrder)
    assert 0 < proxy.rowCount() < 300 or (state.is_empty() and proxy.rowCount() == 300)

    for r in range(proxy.rowCount()):
        for c in range(proxy.columnCount()):
            index = proxy.index(r, c)
            source = DeviceFilterProxy.mapToSource(proxy, index)
            for role in _ROLES:
                assert _same(proxy.data(index, role)) == _same(model.data(source, role)), \
                    (r, c, role)
            assert proxy.flags(index) == model.flags(source)
    for c in range(proxy.columnCount()):
        for role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.TextAlignmentRole):
            assert proxy.headerData(c, Qt.Orientation.Horizontal, role) == model.headerData(
                c, Qt.Orientation.Horizontal, role)

    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    view.resize(1200, 700)
    view.show()
    qtbot.waitExposed(view)
    _CountingProxy.maps = 0
    view.viewport().grab()  # paints every visible cell
    assert _CountingProxy.maps == 0


def test_a_large_fleet_is_re_read_from_the_registry_less_often():
    """The re-read builds every device on a worker thread of the window's
    process; at 10,000 devices it runs every 50 s instead of every 10 s, and
    never less often than once a minute."""
    from plugins.devices.widgets.devices_page import REGISTRY_SYNC_MS, registry_sync_ms

    assert registry_sync_ms(0) == registry_sync_ms(2_000) == REGISTRY_SYNC_MS == 10_000
    assert registry_sync_ms(10_000) == 50_000
    assert registry_sync_ms(100_000) == 60_000
    sizes = [0, 500, 2_000, 2_001, 5_000, 10_000, 20_000, 1_000_000]
    intervals = [registry_sync_ms(n) for n in sizes]
    assert intervals == sorted(intervals)


def test_table_columns_show_what_the_same_messages_as_readings_show(qtbot):
    """A feed may send the messages of devices no view shows in full as the
    table's columns (``TableSamples``: time, battery, RSSI, firmware) instead
    of an event with readings per message; the table reads the same either way:
    battery and RSSI when a message carried them, the newest time as last seen,
    a new firmware (which a firmware filter then finds). Devices not in the
    table are skipped; their device event adds them."""
    from core.model.events import TableSamples

    devices = make_devices(500, now=NOW)
    events = _stream(500, 3_000)
    # some messages carry neither battery nor RSSI: only the time moves
    events += [TelemetryReceived("dev-000007", (Reading("dev-000007", "temperature",
                                                        NOW + timedelta(hours=1), 20.0),),
                                 seq=9_999)]
    events += [TelemetryReceived("dev-999999", (Reading("dev-999999", "battery_pct",
                                                        NOW, 50.0),), seq=1)]
    as_readings, as_columns = FleetTableModel(), FleetTableModel()
    for model in (as_readings, as_columns):
        model.now_s = lambda: NOW.timestamp() + 10
        model.load(devices)
    as_readings.apply_events(events)

    def column(e: TelemetryReceived, metric: str) -> float | None:
        return next((r.value for r in e.readings if r.metric == metric), None)

    samples = TableSamples(
        tuple(e.device_id for e in events),
        tuple(round(max(r.ts for r in e.readings).timestamp() * 1000) for e in events),
        tuple(column(e, "battery_pct") for e in events),
        tuple(column(e, "rssi") for e in events),
        tuple(e.firmware for e in events))
    spans: list[tuple[int, int]] = []
    as_columns.dataChanged.connect(lambda a, b, _r=(): spans.append((a.row(), b.row())))
    reclassified: list[bool] = []
    as_columns.reclassified.connect(lambda: reclassified.append(True))
    touched = as_columns.apply_events([samples])

    assert _table(as_columns) == _table(as_readings)
    assert [r.last_seen_s for r in as_columns.rows()] == pytest.approx(
        [r.last_seen_s for r in as_readings.rows()])
    assert as_columns.row_of("dev-999999") is None
    assert "dev-999999" not in touched and "dev-000007" in touched
    assert len(spans) == 1 and reclassified  # firmware 2.0.0 reached some rows
    assert {r.device.firmware_version for r in as_columns.rows()} >= {"2.0.0"}


@pytest.mark.parametrize("text", ["", "north"], ids=["unfiltered", "filtered"])
def test_a_live_batch_repaints_only_the_changed_rows_on_screen(qtbot, text):
    """A batch of 10,000 devices at 1 Hz touches rows all over the table, so
    the model's one ``dataChanged`` spans it all and Qt repainted every cell on
    screen for it, ten times a second (about 2,100 calls into Python each).
    Now the rows repainted are the changed rows the view shows, and all of
    them: none left stale, none painted for nothing."""
    from PySide6.QtWidgets import QApplication

    model, proxy, view = _shown_table(qtbot, 2_000, text)
    QApplication.processEvents()
    shown = range(view.rowAt(0), view.rowAt(view.viewport().height() - 1) + 1)
    assert 10 < len(shown) < proxy.rowCount()
    on_screen = [proxy.mapToSource(proxy.index(r, 0)).row() for r in shown]
    changed_on_screen = {on_screen[2], on_screen[3], on_screen[9]}  # a run and one apart
    off_screen = {model.row_of(f"dev-{i:06d}") for i in range(500, 2_000, 7)}
    off_screen -= set(on_screen)

    painted: set[int] = set()
    fill_cell = model.fill_cell  # what a paint asks, once a cell

    def counting(row, col, roles):
        painted.add(row)
        fill_cell(row, col, roles)

    model.fill_cell = counting  # type: ignore[method-assign]
    ts = NOW + timedelta(seconds=30)
    model.apply_events([TelemetryReceived(model.device(row).device_id, (
        Reading(model.device(row).device_id, "battery_pct", ts, 11.0),), seq=1)
        for row in sorted(changed_on_screen | off_screen)])
    qtbot.waitUntil(lambda: changed_on_screen <= painted, timeout=5_000)
    QApplication.processEvents()
    # A row's rectangle takes the pixel of the grid line below it, so Qt paints
    # the row under each changed one too; nothing else.
    changed_views = {on_screen.index(row) for row in changed_on_screen}
    painted_views = {on_screen.index(row) for row in painted if row in on_screen}
    assert painted <= set(on_screen)
    assert painted_views <= changed_views | {v + 1 for v in changed_views}
    assert len(painted) <= 2 * len(changed_on_screen) < len(shown) // 2
    for row in changed_on_screen:
        battery = proxy.index(on_screen.index(row) + shown.start, Col.BATTERY)
        assert proxy.data(battery) == "11"


def _shown_table(qtbot, n: int, text: str = ""):
    """``n`` devices in a shown table, ``text`` searched for."""
    from PySide6.QtWidgets import QTableView

    model, proxy = FleetTableModel(), DeviceFilterProxy()
    model.now_s = lambda: NOW.timestamp() + 10
    proxy.setSourceModel(model)
    model.load(make_devices(n, now=NOW))
    proxy.set_text(text)
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    proxy.show_in(view)
    view.resize(1200, 700)
    view.show()
    qtbot.waitExposed(view)
    return model, proxy, view


def _battery_batch(model, rows, value: float):
    ts = NOW + timedelta(seconds=30 + value)
    return [TelemetryReceived(model.device(r).device_id, (
        Reading(model.device(r).device_id, "battery_pct", ts, value),), seq=int(value))
        for r in rows]


def test_a_large_fleets_changes_are_repainted_together_once_a_period(qtbot):
    """At 10,000 devices every 100 ms batch changed a few rows on screen and
    repainted them: ten stalls a second. Past LARGE_FLEET_ROWS the new values
    are in the model at once and the view repaints the rows changed meanwhile
    together, once a period; a small fleet repaints each batch at once."""
    model, proxy, view = _shown_table(qtbot, DeviceFilterProxy.LARGE_FLEET_ROWS + 500)
    repaints: list[tuple[int, int]] = []
    proxy.dataChanged.connect(lambda a, b, _r=(): repaints.append((a.row(), b.row())))
    first = view.rowAt(0)
    for value, rows in ((11.0, [first + 1]), (12.0, [first + 5, first + 6]), (13.0, [first + 9])):
        model.apply_events(_battery_batch(model, rows, value))
    assert repaints == []  # held for the period ...
    assert proxy.data(proxy.index(first + 9, Col.BATTERY)) == "13"  # ... the values are not
    qtbot.waitUntil(lambda: bool(repaints), timeout=3 * DeviceFilterProxy.LARGE_FLEET_REPAINT_MS)
    qtbot.wait(50)
    # one repaint for the three batches: their rows, runs of adjacent rows together
    assert sorted(repaints) == [(first + 1, first + 1), (first + 5, first + 6),
                                (first + 9, first + 9)]

    small, small_proxy, small_view = _shown_table(qtbot, 200)
    at_once: list[int] = []
    small_proxy.dataChanged.connect(lambda a, _b, _r=(): at_once.append(a.row()))
    small.apply_events(_battery_batch(small, [small_view.rowAt(0) + 2], 14.0))
    assert at_once == [small_view.rowAt(0) + 2]


def test_a_held_repaint_is_dropped_when_the_rows_are_sorted_meanwhile(qtbot):
    """A sort moves every row: the rows held for repaint would name other
    devices now, and the sort repaints the whole view anyway."""
    model, proxy, view = _shown_table(qtbot, DeviceFilterProxy.LARGE_FLEET_ROWS + 500)
    repaints: list[int] = []
    proxy.dataChanged.connect(lambda a, _b, _r=(): repaints.append(a.row()))
    model.apply_events(_battery_batch(model, [view.rowAt(0) + 3], 15.0))
    model.sort(int(Col.BATTERY), Qt.SortOrder.DescendingOrder)
    qtbot.wait(int(1.5 * DeviceFilterProxy.LARGE_FLEET_REPAINT_MS))
    assert repaints == []
