"""The devices table paints each cell with one call from Qt into Python.

Qt's delegate asks seven roles a cell; answered through ``data`` that is seven
calls from C++ into Python, each one taking the GIL back from the console's
network threads (at 10,000 live devices the table's repaints were most of
the window's stalls). The proxy answers them all in ``multiData``. The
delegate hands the *same* slots from one cell to the next, so a role left
unwritten would paint the previous cell's colour, icon or alignment: the
table must look exactly as it does when Qt asks role by role.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from PySide6.QtCore import QAbstractItemModel
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QAbstractItemView, QTableView

from console.widgets.tables import configure_row_table
from plugins.devices.widgets.fleet_model import Col, DeviceFilterProxy, FleetTableModel
from tests.gui.devices.conftest import make_devices

pytestmark = pytest.mark.gui

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


class RoleByRoleProxy(DeviceFilterProxy):
    """The same proxy, answering Qt's delegate one role at a time (Qt's own
    ``multiData``, which calls ``data`` per role): the reference picture."""

    def multiData(self, index, roleDataSpan) -> None:  # type: ignore[override]
        QAbstractItemModel.multiData(self, index, roleDataSpan)


class CountingProxy(DeviceFilterProxy):
    def __init__(self) -> None:
        super().__init__()
        self.calls = {"data": 0, "multiData": 0}

    def data(self, index, role=0):  # type: ignore[override]
        self.calls["data"] += 1
        return super().data(index, role)

    def multiData(self, index, roleDataSpan) -> None:  # type: ignore[override]
        self.calls["multiData"] += 1
        super().multiData(index, roleDataSpan)


def _fleet() -> FleetTableModel:
    devices = make_devices(40, now=NOW)
    # unnamed devices (italic, grey stand-in names) between named ones
    devices = [replace(d, name="") if i % 3 == 0 else d for i, d in enumerate(devices)]
    model = FleetTableModel()
    model.now_s = lambda: NOW.timestamp() + 30
    # low batteries (warning colour), some without readings, open alerts
    latest = {d.device_id: {"battery_pct": float(5 + 11 * i % 100), "rssi": -40.0 - i}
              for i, d in enumerate(devices) if i % 4}
    model.load(devices, latest, {d.device_id: i % 3 for i, d in enumerate(devices)})
    return model


def _shown(qtbot, proxy: DeviceFilterProxy, height: int) -> QTableView:
    proxy.setSourceModel(_fleet())
    table = QTableView()
    qtbot.addWidget(table)
    table.setModel(proxy)
    proxy.show_in(table)
    configure_row_table(table, QAbstractItemView.SelectionMode.SingleSelection)
    table.resize(1100, height)
    table.show()
    qtbot.waitExposed(table)
    return table


def _picture(qtbot, proxy: DeviceFilterProxy) -> QImage:
    return _shown(qtbot, proxy, 700).viewport().grab().toImage()


def test_the_table_looks_as_it_does_when_qt_asks_role_by_role(qtbot) -> None:
    ours = _picture(qtbot, DeviceFilterProxy())
    reference = _picture(qtbot, RoleByRoleProxy())
    assert ours.size() == reference.size()
    assert ours == reference


def test_a_repaint_asks_python_once_a_cell_for_its_roles(qtbot) -> None:
    proxy = CountingProxy()
    table = _shown(qtbot, proxy, 400)
    qtbot.waitUntil(lambda: proxy.calls["multiData"] > 0)  # the first paint
    proxy.calls.update(data=0, multiData=0)
    table.viewport().repaint()

    first_row = table.rowAt(0)
    last_row = table.rowAt(table.viewport().height() - 1)
    last_row = proxy.rowCount() - 1 if last_row < 0 else last_row
    columns = sum(1 for c in range(proxy.columnCount())
                  if not table.isColumnHidden(c)
                  and table.columnViewportPosition(c) < table.viewport().width())
    cells = (last_row - first_row + 1) * columns
    assert cells > 50
    assert proxy.calls["multiData"] == cells
    assert proxy.calls["data"] == 0


def test_the_clock_repaints_the_last_seen_column_not_the_table(qtbot, store, make_page) -> None:
    """"Last seen" ages every second; nothing else in a row depends on the
    clock. A whole repaint a second was the page's longest stall at 10,000
    live devices."""
    store.registry.upsert_many(make_devices(60, now=datetime.now(UTC)))
    page = make_page()
    qtbot.waitUntil(lambda: page.proxy.rowCount() == 60, timeout=10_000)
    asked: list[int] = []
    fill_cell = page.model.fill_cell

    def counting(row: int, column: int, roles) -> None:
        asked.append(column)
        fill_cell(row, column, roles)

    page.model.fill_cell = counting  # type: ignore[method-assign]
    qtbot.wait(50)  # pending paints of the load
    asked.clear()
    page._age_last_seen()
    qtbot.waitUntil(lambda: len(asked) > 10, timeout=5_000)
    qtbot.wait(50)
    assert set(asked) == {int(Col.LAST_SEEN)}
    assert page._clock.interval() <= 1000
