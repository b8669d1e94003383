"""Table models of the firmware page: the library, the deployments and one
deployment's devices.

The device table of a deployment is built for 10,000 targets polled every
second: it has one row per target for the deployment's whole life (no
inserts), rows are plain tuples prepared on a worker thread, and a poll is
published as ``dataChanged`` over the ranges of rows that differ — never a
reset, so selection, scrolling and filters survive every poll.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor

from console.widgets.signals import safe_emit
from console.widgets.tables import RolesInOneCall, row_ranges
from core.model import Deployment, Execution, Firmware
from core.protocol.ota import DETAIL_MESSAGE, DETAIL_PROGRESS, DETAIL_REASON, DETAIL_STEP
from plugins.firmware.widgets.common import (
    DEPLOYMENT_COLOURS,
    FAILURES,
    STATE_COLOURS,
    TERMINAL,
    fmt_size,
    fmt_time,
    outcome_text,
    state_title,
)

Index = QModelIndex | QPersistentModelIndex
DISPLAY = Qt.ItemDataRole.DisplayRole
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


class _RowsModel(RolesInOneCall, QAbstractTableModel):
    """Rows of any kind, columns declared by subclasses as HEADERS."""

    HEADERS: tuple[str, ...] = ()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []

    @staticmethod
    def key(row: Any) -> str:
        """The id a row is found by."""
        raise NotImplementedError

    def row(self, row: int) -> Any:
        return self._rows[row]

    def row_of(self, key: str) -> int | None:
        return next((i for i, r in enumerate(self._rows) if self.key(r) == key), None)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = DISPLAY) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == DISPLAY:
            return self.HEADERS[section]
        return None

    def _changed(self, rows: Iterable[int]) -> None:
        last = self.columnCount() - 1
        for start, end in row_ranges(rows):
            safe_emit(self.dataChanged, self.index(start, 0), self.index(end, last))


# ------------------------------------------------------------------ library
SIGNATURE_PENDING = "checking…"


class FirmwareTableModel(_RowsModel):
    HEADERS = ("Device type", "Version", "Size", "Signature", "Added", "Release notes")
    SIGNATURE = 3

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._signatures: dict[str, tuple[bool, str]] = {}

    def set_firmware(self, images: Sequence[Firmware]) -> None:
        """An explicit reload (refresh, after an import); keeps known signature results."""
        self.beginResetModel()
        self._rows = sorted(images, key=lambda f: (f.device_type, _neg_version(f)))
        keep = {f.firmware_id for f in self._rows}
        self._signatures = {k: v for k, v in self._signatures.items() if k in keep}
        self.endResetModel()

    def set_signatures(self, results: dict[str, tuple[bool, str]]) -> None:
        self._signatures.update(results)
        rows = [i for i, f in enumerate(self._rows) if f.firmware_id in results]
        for start, end in row_ranges(rows):
            cell = self.index(start, self.SIGNATURE), self.index(end, self.SIGNATURE)
            safe_emit(self.dataChanged, *cell)

    @staticmethod
    def key(row: Firmware) -> str:
        return row.firmware_id

    def firmware(self, row: int) -> Firmware:
        found: Firmware = self._rows[row]
        return found

    def signature(self, firmware_id: str) -> tuple[bool, str] | None:
        return self._signatures.get(firmware_id)

    def signature_text(self, f: Firmware) -> str:
        if not f.is_signed:
            return "not signed"
        result = self._signatures.get(f.firmware_id)
        if result is None:
            return SIGNATURE_PENDING
        ok, message = result
        return "verified" if ok else f"FAILED: {message}"

    def data(self, index: Index, role: int = DISPLAY) -> Any:
        if not index.isValid():
            return None
        f = self._rows[index.row()]
        col = index.column()
        if role in (DISPLAY, SORT_ROLE):
            if col == 0:
                return f.device_type
            if col == 1:
                return str(f.version) if role == DISPLAY else _version_key(f)
            if col == 2:
                return fmt_size(f.size) if role == DISPLAY else f.size
            if col == 3:
                return self.signature_text(f)
            if col == 4:
                return fmt_time(f.created_at)
            return f.release_notes.splitlines()[0] if f.release_notes else ""
        if role == Qt.ItemDataRole.ForegroundRole and col == self.SIGNATURE:
            result = self._signatures.get(f.firmware_id)
            if not f.is_signed or (result is not None and not result[0]):
                return QColor(STATE_COLOURS["FAILED"])
            if result is not None:
                return QColor(STATE_COLOURS["SUCCEEDED"])
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 2:
            return RIGHT
        if role == Qt.ItemDataRole.ToolTipRole and col == self.SIGNATURE:
            result = self._signatures.get(f.firmware_id)
            return result[1] if result else None
        return None


def _version_key(f: Firmware) -> str:
    v = f.version
    return f"{v.major:06d}.{v.minor:06d}.{v.patch:06d}.{'1' if not v.prerelease else '0'}"


def _neg_version(f: Firmware) -> tuple[int, int, int, int]:
    v = f.version
    return (-v.major, -v.minor, -v.patch, 0 if not v.prerelease else 1)


# ------------------------------------------------------------------ deployments
@dataclass(frozen=True)
class DeploymentRow:
    deployment: Deployment
    counts: dict[str, int]

    @property
    def finished(self) -> int:
        return sum(n for s, n in self.counts.items() if s in TERMINAL)


def problems_text(counts: dict[str, int]) -> str:
    """Failures in the monitor's words ("Rejected 2"), so the list and the
    chips never count the same devices under different names."""
    return " · ".join(f"{state_title(s)} {counts[s]}" for s in PROBLEM_ORDER
                      if counts.get(s, 0))


def note_text(d: Deployment) -> str:
    """The description stays; why it was paused or canceled comes after it."""
    return " — ".join(p for p in (d.description, d.reason) if p)


PROBLEM_ORDER = ("FAILED", "REJECTED", "TIMED_OUT")


class DeploymentListModel(_RowsModel):
    HEADERS = ("Deployment", "Firmware", "Status", "Progress", "Problems", "Created by",
               "Created", "Note")
    STATUS = 2

    def set_rows(self, rows: Sequence[DeploymentRow]) -> None:
        """Same deployments: changed rows only. New ones (listed newest first)
        are inserted at the top, so a selected row stays selected."""
        old_ids = [r.deployment.deployment_id for r in self._rows]
        new_ids = [r.deployment.deployment_id for r in rows]
        added = len(new_ids) - len(old_ids)
        if added >= 0 and new_ids[added:] == old_ids:
            if added:
                self.beginInsertRows(QModelIndex(), 0, added - 1)
                self._rows[:0] = rows[:added]
                self.endInsertRows()
            changed = [i for i in range(added, len(rows)) if rows[i] != self._rows[i]]
            self._rows[added:] = rows[added:]
            self._changed(changed)
            return
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def update_row(self, row: DeploymentRow) -> None:
        """A fresher reading of one deployment (the monitor's poll), so the
        list never shows another state than the monitor below it."""
        i = self.row_of(row.deployment.deployment_id)
        if i is not None and self._rows[i] != row:
            self._rows[i] = row
            self._changed([i])

    @staticmethod
    def key(row: DeploymentRow) -> str:
        return row.deployment.deployment_id

    def data(self, index: Index, role: int = DISPLAY) -> Any:
        if not index.isValid():
            return None
        r = self._rows[index.row()]
        d = r.deployment
        col = index.column()
        if role in (DISPLAY, SORT_ROLE):
            if col == 0:
                return d.deployment_id
            if col == 1:
                return d.firmware_id
            if col == 2:  # as the monitor's badge words it
                return d.status.value.replace("_", " ")
            if col == 3:
                total = len(d.targets)
                if role == SORT_ROLE:
                    return r.counts.get("SUCCEEDED", 0) / total
                return outcome_text(r.counts, total)  # as the monitor's bar says it
            if col == 4:
                if role == SORT_ROLE:
                    return sum(n for s, n in r.counts.items() if s in FAILURES)
                return problems_text(r.counts)
            if col == 5:
                return d.created_by
            if col == 6:
                return fmt_time(d.created_at)
            return note_text(d)
        if role == Qt.ItemDataRole.ForegroundRole and col == 2:
            return QColor(DEPLOYMENT_COLOURS.get(d.status.value, "#6b7280"))
        if role == Qt.ItemDataRole.ForegroundRole and col == 4 and problems_text(r.counts):
            return QColor(STATE_COLOURS["FAILED"])
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 3:
            return RIGHT
        if role == Qt.ItemDataRole.ToolTipRole and col == 3:  # a narrow column cuts it
            return outcome_text(r.counts, len(d.targets))
        if role == Qt.ItemDataRole.ToolTipRole and col == 7:
            return note_text(d) or None
        if role == Qt.ItemDataRole.ToolTipRole and col == 2 and d.reason:
            return d.reason
        return None


# ------------------------------------------------------------------ one deployment's devices
class ExecRow(NamedTuple):
    device_id: str
    state: str
    step: str
    progress: int | None
    details: str
    attempt: int | None
    updated: datetime | None


NOT_STARTED = "not started: the deployment was canceled before this device's turn"
# Steps that come after the download: the image is all there.
_DOWNLOADED_STEPS = frozenset({"verifying", "installing", "rebooting", "selftest", "committed"})


def _progress(status: str, details: dict[str, str]) -> int | None:
    """Download progress in percent. Devices report it only while they
    download and each report replaces the previous details, so later steps
    and success mean the whole image arrived."""
    raw = details.get(DETAIL_PROGRESS, "")
    if raw.replace(".", "", 1).isdigit():
        return min(100, int(float(raw)))
    if status == "SUCCEEDED" or details.get(DETAIL_STEP, "") in _DOWNLOADED_STEPS:
        return 100
    if status == "IN_PROGRESS" and details.get(DETAIL_STEP, "") == "downloading":
        return 0
    return None


def build_rows(targets: Sequence[str], executions: Iterable[Execution], *,
               canceled: bool = False) -> list[ExecRow]:
    """One row per target in target order; targets not released yet are
    PENDING, or CANCELED ("not started") once the deployment is canceled."""
    by_device = {e.device_id: e for e in executions}
    rows = []
    for device_id in targets:
        e = by_device.get(device_id)
        if e is None:
            if canceled:
                rows.append(ExecRow(device_id, "CANCELED", "", None, NOT_STARTED, None, None))
            else:
                rows.append(ExecRow(device_id, "PENDING", "", None, "", None, None))
            continue
        d = e.status_details
        reason, message = d.get(DETAIL_REASON, ""), d.get(DETAIL_MESSAGE, "")
        details = ": ".join(p for p in (reason, message) if p)
        versions = (f"{d['from_version']} → {d['to_version']}"
                    if d.get("from_version") and d.get("to_version") else "")
        if versions and not details:
            details = versions
        rows.append(ExecRow(
            device_id, e.status.value, d.get(DETAIL_STEP, ""), _progress(e.status.value, d),
            details, e.execution_number, e.updated_at))
    return rows


def changed_rows(old: Sequence[ExecRow], new: Sequence[ExecRow]) -> list[int] | None:
    """Rows that differ, or None if the two lists are not the same targets."""
    if len(old) != len(new):
        return None
    return [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]


class ExecutionTableModel(_RowsModel):
    HEADERS = ("Device", "State", "Step", "Progress", "Details", "Attempt", "Updated")
    STATE = 1
    STATE_ROLE = Qt.ItemDataRole.UserRole + 2

    def reset_rows(self, rows: list[ExecRow]) -> None:
        """Another deployment: the one reset."""
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()

    def apply(self, rows: list[ExecRow], changed: Sequence[int]) -> None:
        """A poll of the same deployment: ``changed`` rows (computed off the GUI thread)."""
        self._rows = rows
        self._changed(changed)

    @property
    def rows(self) -> list[ExecRow]:
        return self._rows

    @staticmethod
    def key(row: ExecRow) -> str:
        return row.device_id

    def data(self, index: Index, role: int = DISPLAY) -> Any:
        if not index.isValid():
            return None
        r = self._rows[index.row()]
        col = index.column()
        if role == DISPLAY:
            if col == 3:
                return "" if r.progress is None else f"{r.progress}%"
            if col == 5:
                return "" if r.attempt is None else f"#{r.attempt}"
            if col == 6:
                return r.updated.astimezone().strftime("%H:%M:%S") if r.updated else ""
            value = r[col]
            return value.replace("_", " ").lower() if col == 1 else value
        if role == SORT_ROLE:
            if col == 6:
                return r.updated.timestamp() if r.updated else 0.0
            if col in (3, 5):
                return -1 if r[col] is None else r[col]
            return r[col]
        if role == self.STATE_ROLE:
            return r.state
        if role == Qt.ItemDataRole.ForegroundRole and col == 1:
            return QColor(STATE_COLOURS.get(r.state, "#6b7280"))
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (3, 5):
            return RIGHT
        if role == Qt.ItemDataRole.ToolTipRole and col == 4 and r.details:
            return r.details
        return None


class ExecutionFilter(QSortFilterProxyModel):
    """Text (device id, step, details) and state filters over the device table."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._states: frozenset[str] = frozenset()
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    def set_text(self, text: str) -> None:
        self.beginFilterChange()
        self._text = text.strip().lower()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_states(self, states: Iterable[str]) -> None:
        self.beginFilterChange()
        self._states = frozenset(states)
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()
        assert isinstance(model, ExecutionTableModel)
        r = model.row(source_row)
        if self._states and r.state not in self._states:
            return False
        if self._text:
            return (self._text in r.device_id.lower() or self._text in r.details.lower()
                    or self._text in r.step)
        return True


# ------------------------------------------------------------------ rate over time
RATE_WINDOW_S = 60.0


@dataclass(frozen=True)
class RateSeries:
    """Devices per minute at the end of each bin of ``bin_s`` seconds;
    ``edges`` are epoch seconds. A value is the number of devices in the
    minute (or the bin, if longer) that ends at the bin's right edge, per
    minute of that window: a real rate, which a 4-device rollout can never
    push above 4/min. ``totals`` counts the devices behind each curve."""

    edges: np.ndarray
    notified: np.ndarray
    succeeded: np.ndarray
    failed: np.ndarray
    bin_s: float
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return len(self.edges) < 2


def _bin_width(span_s: float) -> float:
    for width in (10.0, 30.0, 60.0, 300.0, 900.0, 3600.0):
        if span_s / width <= 40:
            return width
    return 3600.0 * 6


def rate_series(executions: Sequence[Execution], now: datetime,
                created: datetime | None = None) -> RateSeries:
    """Notified over time from ``queued_at`` (release time); succeeded and
    failed from ``updated_at`` of finished executions. The time axis ends at
    ``now`` — for a finished deployment pass the moment it finished, so the
    chart stops growing once nothing can happen any more — and starts when
    the deployment was ``created`` (its first bin's left edge; rounding it
    down to a whole bin drew time before the deployment existed)."""
    if not executions:
        empty = np.zeros(0)
        return RateSeries(empty, empty, empty, empty, 60.0)
    queued = np.array([e.queued_at.timestamp() for e in executions])
    done = [(e.updated_at.timestamp(), e.status.value) for e in executions
            if e.status.value in TERMINAL]
    start = float(queued.min())
    if created is not None:
        start = min(start, created.timestamp())
    end = max(now.timestamp(), max((t for t, _ in done), default=start))
    width = _bin_width(end - start)
    first = start if created is not None else np.floor(start / width) * width
    count = int(np.ceil((end - first) / width)) or 1
    if first + count * width <= end:
        count += 1  # an event exactly on the last edge belongs to a bin
    edges = first + width * np.arange(count + 1)
    window = max(RATE_WINDOW_S, width)

    def rate(times: Sequence[float] | np.ndarray) -> np.ndarray:
        t = np.sort(np.asarray(times, dtype=float))
        right = edges[1:]
        # events in (right - window, right], i.e. [left_bound, right) over
        # bins of [a, b): np.histogram puts t in [a, b), so count t < right.
        inside = (np.searchsorted(t, right, side="left")
                  - np.searchsorted(t, right - window, side="left"))
        per_minute: np.ndarray = inside * (60.0 / window)
        return per_minute

    succeeded = [t for t, s in done if s == "SUCCEEDED"]
    failed = [t for t, s in done if s in FAILURES]
    return RateSeries(
        edges, rate(queued), rate(succeeded), rate(failed), width,
        {"notified": len(queued), "succeeded": len(succeeded), "failed": len(failed)},
    )
