"""ColumnTableModel: a table declared as column specs, updated with range
signals so a live page keeps its selection and scroll position and repaints
only what changed (a reset per message would re-read every visible cell)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QAbstractItemModelTester
from PySide6.QtWidgets import QTableView

from console.widgets.tables import (
    RIGHT,
    ROW_HEIGHT,
    SORT_ROLE,
    Column,
    ColumnTableModel,
    configure_row_table,
    row_ranges,
)


@dataclass(frozen=True)
class Pump:
    device_id: str
    battery: int
    seen: datetime | None = None


COLUMNS = (
    Column[Pump]("Device", lambda p: p.device_id, tooltip=lambda p: f"id {p.device_id}",
                 header_tooltip="The device's id"),
    Column[Pump]("Battery %", lambda p: p.battery, align=RIGHT,
                 foreground=lambda p: "#dc2626" if p.battery < 10 else None),
    Column[Pump]("Last seen", lambda p: p.seen),
)


class Signals:
    """What the model told its views."""

    def __init__(self, model: ColumnTableModel[Pump]) -> None:
        self.changed: list[tuple[int, int, int, int]] = []
        self.inserted: list[tuple[int, int]] = []
        self.removed: list[tuple[int, int]] = []
        self.resets = 0
        model.dataChanged.connect(lambda a, b, *_: self.changed.append(
            (a.row(), b.row(), a.column(), b.column())))
        model.rowsInserted.connect(lambda _p, a, b: self.inserted.append((a, b)))
        model.rowsRemoved.connect(lambda _p, a, b: self.removed.append((a, b)))
        model.modelReset.connect(self._reset)

    def _reset(self) -> None:
        self.resets += 1


def pumps(n: int, battery: int = 50) -> list[Pump]:
    return [Pump(f"pump-{i:02}", battery) for i in range(n)]


@pytest.fixture
def model(qtbot) -> ColumnTableModel[Pump]:
    m: ColumnTableModel[Pump] = ColumnTableModel(COLUMNS, key=lambda p: p.device_id)
    QAbstractItemModelTester(m, QAbstractItemModelTester.FailureReportingMode.Fatal, m)
    return m


def test_cells_headers_and_looks_come_from_the_column_specs(model) -> None:
    seen = datetime(2026, 12, 4, 12, 3, 4)
    model.set_rows([Pump("pump-a", 5, seen), Pump("pump-b", 80)])
    assert model.rowCount() == 2 and model.columnCount() == 3
    header = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(3)]
    assert header == ["Device", "Battery %", "Last seen"]
    assert model.headerData(0, Qt.Orientation.Horizontal,
                            Qt.ItemDataRole.ToolTipRole) == "The device's id"
    assert model.data(model.index(0, 0)) == "pump-a"
    assert model.data(model.index(0, 1)) == "5"
    assert model.data(model.index(0, 2)) == "2026-12-04 12:03:04"
    assert model.data(model.index(1, 2)) == ""
    assert model.data(model.index(0, 1), Qt.ItemDataRole.TextAlignmentRole) == RIGHT
    assert model.data(model.index(0, 0), Qt.ItemDataRole.ToolTipRole) == "id pump-a"
    assert model.data(model.index(0, 1), Qt.ItemDataRole.ForegroundRole) == QColor("#dc2626")
    assert model.data(model.index(1, 1), Qt.ItemDataRole.ForegroundRole) is None
    assert model.data(model.index(0, 1), SORT_ROLE) == 5  # numbers sort as numbers


def test_a_refresh_of_the_same_rows_repaints_only_what_changed(qtbot, model) -> None:
    rows = pumps(10)
    model.set_rows(rows)
    table = QTableView()
    qtbot.addWidget(table)
    table.setModel(model)
    table.selectionModel().select(
        model.index(7, 0),
        QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
    seen = Signals(model)
    rows[3] = Pump("pump-03", 9)
    rows[4] = Pump("pump-04", 8)
    rows[8] = Pump("pump-08", 7)
    model.set_rows(rows)
    assert seen.resets == 0
    assert seen.changed == [(3, 4, 0, 2), (8, 8, 0, 2)]
    assert model.data(model.index(4, 1)) == "8"
    assert [i.row() for i in table.selectionModel().selectedRows()] == [7]


def test_live_upserts_are_ranges_and_appends_not_resets(model) -> None:
    model.set_rows(pumps(5))
    seen = Signals(model)
    model.upsert([Pump("pump-01", 1), Pump("pump-02", 2), Pump("pump-04", 50),
                  Pump("pump-new", 60)])
    assert seen.resets == 0
    assert seen.changed == [(1, 2, 0, 2)]  # pump-04 did not change: not repainted
    assert seen.inserted == [(5, 5)]
    assert model.row_of("pump-new") == 5
    assert model.row(5).battery == 60


def test_remove_signals_each_range_and_keeps_lookups_true(model) -> None:
    model.set_rows(pumps(6))
    seen = Signals(model)
    model.remove(["pump-01", "pump-02", "pump-04", "unknown"])
    assert seen.removed == [(4, 4), (1, 2)]
    assert [p.device_id for p in model.rows] == ["pump-00", "pump-03", "pump-05"]
    assert model.row_of("pump-05") == 2
    assert model.row_of("pump-01") is None


def test_a_different_list_resets(model) -> None:
    model.set_rows(pumps(3))
    seen = Signals(model)
    model.set_rows(pumps(4))
    assert seen.resets == 1
    assert model.rowCount() == 4


def test_rows_changed_can_name_columns(model) -> None:
    model.set_rows(pumps(4))
    seen = Signals(model)
    model.rows_changed([0, 1, 3], columns=[1])
    assert seen.changed == [(0, 1, 1, 1), (3, 3, 1, 1)]


def test_without_a_key_live_updates_are_refused_clearly(qtbot) -> None:
    model: ColumnTableModel[Pump] = ColumnTableModel(COLUMNS)
    model.set_rows(pumps(2))
    with pytest.raises(TypeError, match="without key="):
        model.upsert([Pump("pump-00", 1)])


def test_row_heights_stay_fixed_in_the_view(qtbot, model) -> None:
    table = QTableView()
    qtbot.addWidget(table)
    configure_row_table(table)
    table.setModel(model)
    model.set_rows(pumps(3))
    assert table.verticalHeader().defaultSectionSize() == ROW_HEIGHT
    assert not table.verticalHeader().isVisible()


def test_row_ranges() -> None:
    assert row_ranges([5, 1, 2, 2, 3, 9]) == [(1, 3), (5, 5), (9, 9)]
    assert row_ranges([]) == []
