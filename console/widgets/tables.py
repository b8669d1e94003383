"""What every list in the console shares.

* ``configure_row_table``: the look (whole-row selection, striped rows, no row
  numbers) and one fixed row height, which is also what keeps a 100,000-row
  view cheap: Qt never measures rows. Row heights are the view's job, so every
  page calls this on its ``QTableView``.
* ``ColumnTableModel``: a table model declared as a list of ``Column`` specs
  (title, value getter, alignment, tooltip, colour), so a page states what it
  shows and nothing about how Qt asks for it. Updates are range
  ``dataChanged`` signals over the rows that changed, never a model reset per
  message: a reset drops the selection and the scroll position and makes the
  view re-read every visible cell.

Example::

    COLUMNS = (
        Column("Device", lambda d: d.device_id),
        Column("Firmware", lambda d: d.firmware_version, tooltip=lambda d: d.firmware_id),
        Column("Battery %", lambda d: d.battery, align=RIGHT,
               foreground=lambda d: "#dc2626" if d.battery < 10 else None),
    )
    model = ColumnTableModel(COLUMNS, key=lambda d: d.device_id)
    model.set_rows(api.devices.list())   # refresh: same rows -> dataChanged only
    model.upsert([changed_device])       # live message: one row repainted

A subclass may add state that columns read (see the audit page's model) and
call ``rows_changed`` when that state changes.

* ``RolesInOneCall``: a model mixin answering all the roles Qt's delegate asks
  of a cell in one call from Qt (``multiData``) instead of seven ``data``
  calls; every call from C++ into Python waits for the GIL whenever one of the
  console's network threads holds it, so a repaint of a long list under live
  load waits seven times less often.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from console.widgets.signals import safe_emit

ROW_HEIGHT = 26

R = TypeVar("R")
Index = QModelIndex | QPersistentModelIndex

LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
CENTER = Qt.AlignmentFlag.AlignCenter

DISPLAY = Qt.ItemDataRole.DisplayRole
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


def configure_row_table(
    table: QTableView,
    selection: QAbstractItemView.SelectionMode = QAbstractItemView.SelectionMode.ExtendedSelection,
) -> None:
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(selection)
    table.setAlternatingRowColors(True)
    rows = table.verticalHeader()
    rows.setVisible(False)
    rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    rows.setDefaultSectionSize(ROW_HEIGHT)


def display_text(value: Any) -> str:
    """How a cell value reads: nothing for None, local time for datetimes."""
    if value is None:
        return ""
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y-%m-%d %H:%M:%S"))
    return str(value)


def row_ranges(rows: Iterable[int]) -> list[tuple[int, int]]:
    """Row numbers grouped into sorted, inclusive, contiguous ranges."""
    ranges: list[tuple[int, int]] = []
    for row in sorted(set(rows)):
        if ranges and row == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], row)
        else:
            ranges.append((row, row))
    return ranges


@dataclass(frozen=True)
class Column(Generic[R]):
    """One column: its header, how a row's value is read, and how it looks.

    ``value`` returns what the cell shows (formatted by ``display_text``) and,
    unless ``sort`` is given, what it sorts by when that is a number.
    """

    title: str
    value: Callable[[R], Any]
    align: Qt.AlignmentFlag = LEFT
    tooltip: Callable[[R], str | None] | None = None
    foreground: Callable[[R], str | None] | None = None
    sort: Callable[[R], Any] | None = None
    header_tooltip: str = ""

    def text(self, row: R) -> str:
        return display_text(self.value(row))

    def sort_key(self, row: R) -> Any:
        if self.sort is not None:
            return self.sort(row)
        value = self.value(row)
        return value if isinstance(value, int | float) else display_text(value)


def fill_roles(roles: Any, answer: Callable[[int], Any]) -> None:
    """Write ``answer(role)`` into each slot of a ``QModelRoleDataSpan``.

    Qt's delegate asks seven roles a cell and hands the same slots from one
    cell to the next, so a role without a value is cleared, never skipped (a
    skipped slot would paint the previous cell's colour or icon). ``roles``
    is indexable at run time; PySide's stubs do not say so."""
    for i in range(len(roles)):
        slot = roles[i]
        value = answer(slot.role())
        if value is None:
            slot.clearData()
        else:
            slot.setData(value)


class RolesInOneCall:
    """Put first in a table model's bases: ``multiData`` answers every role of
    a cell through the model's own ``data``, in Python, in one call from Qt
    (see ``fill_roles``)."""

    data: Callable[..., Any]  # the model's own (declared here for the type checker only)

    def multiData(self, index: Index, roleDataSpan: Any) -> None:
        fill_roles(roleDataSpan, partial(self.data, index))


class ColumnTableModel(RolesInOneCall, QAbstractTableModel, Generic[R]):
    """A read-only model over a list of rows, its columns given as ``Column`` specs.

    With ``key`` (a row's identity), ``set_rows`` of the same rows in the same
    order only repaints the rows that differ, and ``upsert``/``remove`` apply
    live changes as range signals. Without a key, ``set_rows`` resets.
    """

    SORT_ROLE = SORT_ROLE

    def __init__(
        self,
        columns: Sequence[Column[R]],
        key: Callable[[R], Hashable] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.columns: tuple[Column[R], ...] = tuple(columns)
        self._key = key
        self._rows: list[R] = []
        self._where: dict[Hashable, int] = {}

    # ------------------------------------------------------------ rows
    @property
    def rows(self) -> Sequence[R]:
        return tuple(self._rows)

    def row(self, row: int) -> R:
        return self._rows[row]

    def row_of(self, key: Hashable) -> int | None:
        """The row number of the row with ``key`` (needs a key function)."""
        return self._where.get(key)

    def set_rows(self, rows: Iterable[R]) -> None:
        """Show ``rows``. The same keys in the same order (a refresh of the
        same list) repaint only changed rows; anything else is a reset."""
        new = list(rows)
        key = self._key
        if key is not None and len(new) == len(self._rows) and all(
                key(a) == key(b) for a, b in zip(self._rows, new, strict=True)):
            changed = [i for i, (a, b) in enumerate(zip(self._rows, new, strict=True)) if a != b]
            self._rows = new
            self.rows_changed(changed)
            return
        self.beginResetModel()
        self._rows = new
        self._reindex()
        self.endResetModel()

    def upsert(self, rows: Iterable[R]) -> None:
        """Replace rows whose key is shown (range ``dataChanged``) and append
        the others (one ``rowsInserted``). Needs a key function."""
        key = self._require_key()
        changed: list[int] = []
        added: dict[Hashable, R] = {}
        for r in rows:
            k = key(r)
            at = self._where.get(k)
            if at is None:
                added[k] = r
            elif self._rows[at] != r:
                self._rows[at] = r
                changed.append(at)
        self.rows_changed(changed)
        if added:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(added) - 1)
            for offset, k in enumerate(added):
                self._where[k] = first + offset
            self._rows.extend(added.values())
            self.endInsertRows()

    def remove(self, keys: Iterable[Hashable]) -> None:
        """Remove the rows with these keys, one ``rowsRemoved`` per range."""
        self._require_key()
        rows = [self._where[k] for k in keys if k in self._where]
        if not rows:
            return
        for start, end in reversed(row_ranges(rows)):
            self.beginRemoveRows(QModelIndex(), start, end)
            del self._rows[start:end + 1]
            self.endRemoveRows()
        self._reindex()

    def rows_changed(self, rows: Iterable[int], columns: Sequence[int] | None = None) -> None:
        """Repaint these rows (all columns, or the given ones) as range signals;
        for subclasses whose own state the columns read has changed."""
        if not self._rows or not self.columns:
            return
        spans = row_ranges(columns) if columns is not None else [(0, len(self.columns) - 1)]
        for start, end in row_ranges(rows):
            for left, right in spans:
                safe_emit(self.dataChanged, self.index(start, left), self.index(end, right))

    def _require_key(self) -> Callable[[R], Hashable]:
        if self._key is None:
            raise TypeError(f"{type(self).__name__} was built without key=: rows cannot be "
                            "found by identity, use set_rows")
        return self._key

    def _reindex(self) -> None:
        key = self._key
        self._where = {} if key is None else {key(r): i for i, r in enumerate(self._rows)}

    # ------------------------------------------------------------ Qt
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = DISPLAY) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.columns):
            return None
        column = self.columns[section]
        if role == DISPLAY:
            return column.title
        if role == Qt.ItemDataRole.ToolTipRole and column.header_tooltip:
            return column.header_tooltip
        return None

    def data(self, index: Index, role: int = DISPLAY) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        column = self.columns[index.column()]
        row = self._rows[index.row()]
        if role == DISPLAY:
            return column.text(row)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return column.align
        if role == Qt.ItemDataRole.ToolTipRole and column.tooltip is not None:
            return column.tooltip(row)
        if role == Qt.ItemDataRole.ForegroundRole and column.foreground is not None:
            colour = column.foreground(row)
            return QColor(colour) if colour else None
        if role == SORT_ROLE:
            return column.sort_key(row)
        return None
