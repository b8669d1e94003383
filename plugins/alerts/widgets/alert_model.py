"""The alert queue as a QAbstractTableModel, most severe and newest first.

Explicit reloads (a filter changed, F5) reset the model; live events only
update a row in place (``dataChanged`` for that row), insert it at its sorted
position or remove it when it no longer matches the filter.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap

from console.widgets.tables import RolesInOneCall
from core.model import Alert, AlertState, Severity

from ._common import SEVERITY_COLOURS, local_time, relative_time

Index = QModelIndex | QPersistentModelIndex

OPEN_STATES = frozenset({AlertState.ACTIVE, AlertState.ACKNOWLEDGED})

COLUMNS = ("Severity", "State", "Device", "Rule", "Message", "Value", "Raised",
           "Acknowledged", "Snoozed")
(C_SEVERITY, C_STATE, C_DEVICE, C_RULE, C_MESSAGE, C_VALUE, C_RAISED, C_ACK,
 C_SNOOZED) = range(len(COLUMNS))

ALERT_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Empty sets mean "any"; ``text`` matches device id, rule id/name or message."""

    states: frozenset[AlertState] = OPEN_STATES
    severities: frozenset[Severity] = frozenset()
    text: str = ""
    since: datetime | None = None
    rule_names: dict[str, str] = field(default_factory=dict, compare=False)

    def matches(self, alert: Alert) -> bool:
        if self.states and alert.state not in self.states:
            return False
        if self.severities and alert.severity not in self.severities:
            return False
        if self.since is not None and alert.created_at < self.since:
            return False
        if self.text:
            needle = self.text.casefold()
            haystack = (alert.device_id, alert.rule_id, alert.message,
                        self.rule_names.get(alert.rule_id, ""))
            if not any(needle in h.casefold() for h in haystack):
                return False
        return True


def sort_key(alert: Alert) -> tuple[int, float, str]:
    return (-alert.severity.rank, -alert.created_at.timestamp(), alert.alert_id)


_ICONS: dict[Severity, QIcon] = {}


def severity_icon(severity: Severity) -> QIcon:
    icon = _ICONS.get(severity)
    if icon is None:
        pixmap = QPixmap(12, 12)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(SEVERITY_COLOURS[severity]))
        if severity is Severity.CRITICAL:
            painter.drawRoundedRect(1, 1, 10, 10, 2, 2)
        else:
            painter.drawEllipse(1, 1, 10, 10)
        painter.end()
        icon = QIcon(pixmap)
        icon.addPixmap(pixmap, QIcon.Mode.Selected)  # no selection tint on the colour
        _ICONS[severity] = icon
    return icon


class AlertTableModel(RolesInOneCall, QAbstractTableModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._alerts: list[Alert] = []
        self._keys: list[tuple[int, float, str]] = []
        self._rows: dict[str, int] = {}
        self.filter = AlertFilter()
        self.rule_names: dict[str, str] = {}
        self.secondary_colour = QColor("#5f6b7a")

    # ---------------------------------------------------------- data API
    def set_alerts(self, alerts: Iterable[Alert]) -> None:
        """A whole reload: explicit refreshes and filter changes only."""
        ordered = sorted((a for a in alerts if self.filter.matches(a)), key=sort_key)
        self.beginResetModel()
        self._alerts = ordered
        self._keys = [sort_key(a) for a in ordered]
        self._reindex()
        self.endResetModel()

    def upsert(self, alert: Alert) -> str:
        """Apply one changed alert; returns "updated", "inserted", "removed" or ""."""
        row = self._rows.get(alert.alert_id)
        wanted = self.filter.matches(alert)
        if row is not None:
            old = self._alerts[row]
            if alert.version < old.version or alert == old:
                return ""  # a late event for an older state, or nothing new
            if not wanted:
                self._remove(row)
                return "removed"
            if sort_key(alert) == self._keys[row]:
                self._alerts[row] = alert
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
                return "updated"
            self._remove(row)
            self._insert(alert)
            return "updated"
        if not wanted:
            return ""
        self._insert(alert)
        return "inserted"

    def remove(self, alert_id: str) -> bool:
        row = self._rows.get(alert_id)
        if row is None:
            return False
        self._remove(row)
        return True

    def alert_at(self, row: int) -> Alert:
        return self._alerts[row]

    def row_of(self, alert_id: str) -> int | None:
        return self._rows.get(alert_id)

    def alerts(self) -> list[Alert]:
        return list(self._alerts)

    def refresh_times(self) -> None:
        """Relative times age: repaint that column only."""
        if self._alerts:
            top, bottom = self.index(0, C_RAISED), self.index(len(self._alerts) - 1, C_RAISED)
            self.dataChanged.emit(top, bottom, [Qt.ItemDataRole.DisplayRole])

    def _insert(self, alert: Alert) -> None:
        key = sort_key(alert)
        row = bisect.bisect_left(self._keys, key)
        self.beginInsertRows(QModelIndex(), row, row)
        self._alerts.insert(row, alert)
        self._keys.insert(row, key)
        self._reindex(row)
        self.endInsertRows()

    def _remove(self, row: int) -> None:
        self.beginRemoveRows(QModelIndex(), row, row)
        removed = self._alerts.pop(row)
        self._keys.pop(row)
        self._rows.pop(removed.alert_id, None)
        self._reindex(row)
        self.endRemoveRows()

    def _reindex(self, start: int = 0) -> None:
        if start == 0:
            self._rows = {}
        for i in range(start, len(self._alerts)):
            self._rows[self._alerts[i].alert_id] = i

    # ---------------------------------------------------------- Qt API
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._alerts)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._alerts):
            return None
        alert = self._alerts[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(alert, col)
        if role == ALERT_ROLE:
            return alert
        if role == Qt.ItemDataRole.DecorationRole and col == C_SEVERITY:
            return severity_icon(alert.severity)
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == C_SEVERITY:
                return QColor(SEVERITY_COLOURS[alert.severity])
            if alert.state is AlertState.RESOLVED or alert.is_snoozed():
                return self.secondary_colour
            return None
        if role == Qt.ItemDataRole.FontRole and col == C_SEVERITY and \
                alert.severity is Severity.CRITICAL and alert.state is AlertState.ACTIVE:
            return _bold()
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(alert, col)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == C_VALUE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, a: Alert, col: int) -> str:
        if col == C_SEVERITY:
            return a.severity.value
        if col == C_STATE:
            return a.state.value
        if col == C_DEVICE:
            return a.device_id
        if col == C_RULE:
            return self.rule_names.get(a.rule_id, a.rule_id)
        if col == C_MESSAGE:
            return a.message
        if col == C_VALUE:
            return "" if a.value is None else f"{a.value:g}"
        if col == C_RAISED:
            return relative_time(a.created_at).removesuffix(" ago")
        if col == C_ACK:
            if not a.acknowledged_by:
                return ""
            return f"{a.acknowledged_by}: {a.ack_comment}" if a.ack_comment else a.acknowledged_by
        if col == C_SNOOZED:
            return local_time(a.snoozed_until, seconds=False) if a.is_snoozed() else ""
        return ""

    def _tooltip(self, a: Alert, col: int) -> str | None:
        if col == C_RAISED:
            return f"Raised {local_time(a.created_at)}\nUpdated {local_time(a.updated_at)}"
        if col == C_ACK and a.acknowledged_by:
            return (f"Acknowledged by {a.acknowledged_by} at {local_time(a.acknowledged_at)}"
                    + (f"\n{a.ack_comment}" if a.ack_comment else ""))
        if col == C_RULE:
            return a.rule_id
        if col == C_MESSAGE:
            return a.message
        return None


_BOLD: list[QFont] = []


def _bold() -> QFont:
    if not _BOLD:
        font = QFont()
        font.setBold(True)
        _BOLD.append(font)
    return _BOLD[0]


def now_utc() -> datetime:
    return datetime.now(UTC)
