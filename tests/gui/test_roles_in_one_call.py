"""The console's lists answer a cell's roles in one call from Qt
(``RolesInOneCall``), and look exactly as they do when Qt asks role by role.

Qt's delegate asks seven roles a cell; each call from C++ into Python waits
for the GIL while a network thread holds it, so a list repainted under live
load waits seven times less often. The delegate hands the same slots from one
cell to the next: a role left unwritten would paint the previous cell's
colour, icon, font or alignment, which the picture comparison catches.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PySide6.QtCore import QAbstractItemModel
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QTableView

from console.widgets.tables import RIGHT, Column, ColumnTableModel, configure_row_table
from core.model import Alert, AlertState, Severity
from plugins.alerts.widgets.alert_model import AlertTableModel

pytestmark = pytest.mark.gui

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def _role_by_role(cls: type) -> type:
    """The same model, answering Qt one role at a time (Qt's own multiData,
    which calls ``data`` per role): the reference picture."""

    class RoleByRole(cls):  # type: ignore[misc, valid-type]
        def multiData(self, index: Any, roleDataSpan: Any) -> None:
            QAbstractItemModel.multiData(self, index, roleDataSpan)

    return RoleByRole


def _counting(cls: type) -> type:
    """Counts ``data`` calls that come straight from Qt (C++ calling the
    Python override: the caller's frame is whatever Python frame started the
    paint) apart from those made inside the model's own ``multiData`` (through
    ``console.widgets.tables.fill_roles``)."""

    class Counting(cls):  # type: ignore[misc, valid-type]
        calls = {"from_qt": 0, "in_multidata": 0}

        def data(self, index: Any, role: int = 0) -> Any:
            caller = sys._getframe(1).f_code.co_name
            in_python = caller in ("multiData", "fill_roles")  # the model's own multiData
            Counting.calls["in_multidata" if in_python else "from_qt"] += 1
            return super().data(index, role)

    return Counting


def _alerts(model: AlertTableModel) -> None:
    states = [AlertState.ACTIVE, AlertState.ACKNOWLEDGED, AlertState.RESOLVED]
    severities = [Severity.INFO, Severity.WARNING, Severity.CRITICAL]
    model.set_alerts([
        replace(Alert(f"pump-{i:05d}", f"rule-{i % 4}", severities[i % 3],
                      f"value {i} out of range", float(i)),
                state=states[i % 3], created_at=NOW - timedelta(minutes=i),
                updated_at=NOW - timedelta(minutes=i))
        for i in range(30)])


@dataclass(frozen=True)
class Meter:
    name: str
    battery: float
    note: str


_COLUMNS = (
    Column("Meter", lambda m: m.name, tooltip=lambda m: m.note or None),
    Column("Battery %", lambda m: m.battery, align=RIGHT,
           foreground=lambda m: "#dc2626" if m.battery < 20 else None),
    Column("Note", lambda m: m.note, foreground=lambda m: "#6b7280" if not m.note else None),
)


def _meters(model: ColumnTableModel[Meter]) -> None:
    model.set_rows([Meter(f"meter-{i}", float(i * 7 % 100), "roof" if i % 3 else "")
                    for i in range(30)])


def _column_model(cls: type) -> Any:
    return cls(_COLUMNS, key=lambda m: m.name)


CASES = [
    pytest.param(AlertTableModel, lambda cls: cls(), _alerts, id="alerts"),
    pytest.param(ColumnTableModel, _column_model, _meters, id="columns"),
]


def _shown(qtbot, model: Any) -> QTableView:
    table = QTableView()
    qtbot.addWidget(table)
    table.setModel(model)
    configure_row_table(table)
    table.resize(1000, 500)
    table.show()
    qtbot.waitExposed(table)
    return table


@pytest.mark.parametrize(("cls", "make", "fill"), CASES)
def test_a_list_looks_as_it_does_when_qt_asks_role_by_role(qtbot, cls, make, fill) -> None:
    pictures: list[QImage] = []
    kept: list[Any] = []  # the models and views live until compared
    for kind in (cls, _role_by_role(cls)):
        model = make(kind)
        fill(model)
        table = _shown(qtbot, model)
        kept += [model, table]
        pictures.append(table.viewport().grab().toImage())
    assert pictures[0] == pictures[1]


@pytest.mark.parametrize(("cls", "make", "fill"), CASES)
def test_a_repaint_asks_python_once_a_cell_for_its_roles(qtbot, cls, make, fill) -> None:
    counting = _counting(cls)
    model = make(counting)
    fill(model)
    table = _shown(qtbot, model)
    qtbot.waitUntil(lambda: counting.calls["in_multidata"] > 0)
    counting.calls.update(from_qt=0, in_multidata=0)
    table.viewport().repaint()
    # seven roles of at least ten rows of cells, all asked in Python
    assert counting.calls["in_multidata"] >= 7 * 10 * model.columnCount()
    assert counting.calls["from_qt"] == 0
