"""The fleet table: one row per device, updated in place from the live feed.

Sorting is done here, one numpy ``lexsort`` over per-column key arrays kept in
row order, and published with ``layoutChanged``; the proxy (DeviceFilterProxy)
only filters, in one pass, never calling Python per row through Qt.
QSortFilterProxyModel would call ``data()`` a few million times to sort 100,000
rows and ``filterAcceptsRow`` once per row on every change. Live updates never
reset the model: changed rows are grouped into contiguous ranges and sent as
``dataChanged``, new devices are appended with ``beginInsertRows``.
"""

from __future__ import annotations

import enum
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractProxyModel,
    QAbstractTableModel,
    QModelIndex,
    QModelRoleDataSpan,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QPainter, QPixmap
from PySide6.QtWidgets import QTableView

from console.widgets.signals import safe_emit
from console.widgets.tables import fill_roles, row_ranges
from core.model import Device, DeviceStatus, Reading, Severity, keep_newest
from core.model.events import DeviceChanged, FleetEvent, TableSamples, TelemetryReceived
from core.services.fleet_health import device_health, status_label

Index = QModelIndex | QPersistentModelIndex

BATTERY_METRIC = "battery_pct"
RSSI_METRIC = "rssi"
TABLE_METRICS = (BATTERY_METRIC, RSSI_METRIC)

STATUS_COLOURS = {
    "online": "#16a34a",
    "offline": "#6b7280",
    "warning": "#d97706",
    "error": "#dc2626",
    "decommissioned": "#9ca3af",
}


class Col(enum.IntEnum):
    STATUS = 0
    DEVICE_ID = 1
    NAME = 2
    TYPE = 3
    ORGANIZATION = 4
    FIRMWARE = 5
    LAST_SEEN = 6
    BATTERY = 7
    RSSI = 8
    ALERTS = 9


HEADERS = {
    Col.STATUS: "Status",
    Col.DEVICE_ID: "Device",
    Col.NAME: "Name",
    Col.TYPE: "Type",
    Col.ORGANIZATION: "Organization",
    Col.FIRMWARE: "Firmware",
    Col.LAST_SEEN: "Last seen",
    Col.BATTERY: "Battery %",
    Col.RSSI: "RSSI dBm",
    Col.ALERTS: "Active alerts",
}
NUMERIC = {Col.LAST_SEEN, Col.BATTERY, Col.RSSI, Col.ALERTS}
_LAST_COL = len(Col) - 1
_N_COLS = len(Col)  # a constant: Qt asks for the column count thousands of times


@dataclass(slots=True)
class FleetRow:
    device: Device
    battery: float | None = None
    rssi: float | None = None
    alerts: int = 0
    last_seen_s: float | None = None  # epoch seconds, newest of registry and readings
    haystack: str = ""
    worst: Severity | None = None  # most severe open alert: with the link, the health
    # Derived from ``device`` and ``worst`` by refresh_haystack (every change of
    # either goes through it): sorting 100,000 rows reads these, not functions.
    name_key: str = ""
    _status: DeviceStatus | None = None

    @property
    def status(self) -> DeviceStatus:
        """The health as a status (core.services.fleet_health): what the row
        shows. ``device.status`` stays the registry's link status."""
        status = self._status
        if status is None:
            status = self._status = device_health(self.device, self.worst).status
        return status

    def refresh_haystack(self) -> None:
        d = self.device
        self._status = None
        self.name_key = shown_name(d).lower()
        parts = [d.device_id, shown_name(d), d.device_type, d.organization,
                 d.firmware_version or "", self.status.value, status_label(self.status),
                 *sorted(d.tags)]
        if d.location is not None:
            parts.append(d.location.label)
        self.haystack = "\n".join(parts).lower()


_TRAILING_NUMBER = re.compile(r"(\d+)$")


def fallback_name(device: Device) -> str:
    """A readable stand-in for a device registered without a name: its type
    and number ("env-00003" of type environmental -> "Environmental 3"), so
    the Name column is never a blank column for a fleet that has no names."""
    number = _TRAILING_NUMBER.search(device.device_id)
    kind = device.device_type.replace("_", " ").strip().capitalize() or "Device"
    return f"{kind} {int(number.group(1))}" if number else device.device_id


def shown_name(device: Device) -> str:
    return device.name or fallback_name(device)


def relative_time(then_s: float | None, now_s: float) -> str:
    if then_s is None:
        return "never"
    age = max(0.0, now_s - then_s)
    if age < 60:
        return f"{int(age)} s ago"
    if age < 3600:
        return f"{int(age // 60)} min ago"
    if age < 86400:
        return f"{int(age // 3600)} h ago"
    return f"{int(age // 86400)} d ago"


def _fmt_number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}"


def _sort_key(row: FleetRow, col: Col) -> Any:
    """Keys of one type per column; missing numbers sort first (ascending)."""
    d = row.device
    if col is Col.STATUS:
        return row.status.value
    if col is Col.DEVICE_ID:
        return d.device_id
    if col is Col.NAME:
        return row.name_key
    if col is Col.TYPE:
        return d.device_type
    if col is Col.ORGANIZATION:
        return d.organization
    if col is Col.FIRMWARE:
        return _version_key(d.firmware_version)
    if col is Col.LAST_SEEN:
        return -math.inf if row.last_seen_s is None else row.last_seen_s
    if col is Col.BATTERY:
        return -math.inf if row.battery is None else row.battery
    if col is Col.RSSI:
        return -math.inf if row.rssi is None else row.rssi
    return row.alerts


def _ranked(keys: list[Any], key: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Firmware versions (a handful of distinct values) as integer ranks: one
    Python sort of the distinct values, a dict look-up per row; versions whose
    keys are equal share a rank (ties, broken by device id as in any sort)."""
    distinct = set(keys)
    by_key = {k: i for i, k in enumerate(sorted({key(v) for v in distinct}))}
    rank = {v: by_key[key(v)] for v in distinct}
    return np.fromiter(map(rank.__getitem__, keys), np.int64, len(keys))


def _sort_key_array(rows: Sequence[FleetRow], col: Col) -> np.ndarray[Any, Any]:
    """``_sort_key`` of every row as one numpy array (not for the device id
    column: the id ranks are its key): floats, ints, numpy strings (sorted in
    C), firmware ranks. Missing numbers are -inf: first when ascending, as
    ``_sort_key`` says."""
    n = len(rows)
    inf = -math.inf
    if col is Col.LAST_SEEN:
        return np.fromiter((inf if r.last_seen_s is None else r.last_seen_s for r in rows),
                           np.float64, n)
    if col is Col.BATTERY:
        return np.fromiter((inf if r.battery is None else r.battery for r in rows),
                           np.float64, n)
    if col is Col.RSSI:
        return np.fromiter((inf if r.rssi is None else r.rssi for r in rows), np.float64, n)
    if col is Col.ALERTS:
        return np.fromiter((r.alerts for r in rows), np.int64, n)
    if col is Col.FIRMWARE:
        return _ranked([r.device.firmware_version or "" for r in rows], key=_version_key)
    return np.array([_text_key(r, col) for r in rows], dtype=str)


def _text_key(row: FleetRow, col: Col) -> str:
    if col is Col.NAME:
        return row.name_key
    if col is Col.TYPE:
        return row.device.device_type
    if col is Col.ORGANIZATION:
        return row.device.organization
    return row.status.value


def _update_keys(keys: np.ndarray[Any, Any], rows: Sequence[FleetRow], col: Col,
                 changed: Iterable[int]) -> bool:
    """Refresh the cached keys of the changed rows in place; False when that
    cannot be done (a firmware rank for a version not ranked yet, a text
    longer than the array's strings) and the column must be rebuilt."""
    if col is Col.FIRMWARE:
        return False
    if col in NUMERIC:
        for i in changed:
            keys[i] = _sort_key(rows[i], col)
        return True
    width = keys.dtype.itemsize // 4
    for i in changed:
        text = _text_key(rows[i], col)
        if len(text) > width:
            return False
        keys[i] = text
    return True


def _version_key(version: str | None) -> tuple[Any, ...]:
    if not version:
        return ((-1,),)
    core, _, pre = version.partition("-")
    nums = tuple(int(p) if p.isdigit() else -1 for p in core.split("."))
    # a release sorts after its pre-releases, as in SemVer
    return (nums, 0 if pre else 1, pre)


class FleetTableModel(QAbstractTableModel):
    """Rows of devices plus their latest battery/RSSI and open alert count.

    Public API (GUI thread only):

    * ``load(devices, latest_values, alert_counts)`` — the initial/F5 load (one reset)
    * ``apply_events(events)`` — a LiveBridge batch; dataChanged/insert only
    * ``upsert_devices(devices)`` — console-side edits (register, rename, ...)
    * ``set_alert_counts({device_id: n})`` — partial update of the alert column
    * ``device(row)``, ``row_of(device_id)``, ``row_data(row)``, ``distinct(...)``
    """

    SORT_ROLE = Qt.ItemDataRole.UserRole + 1
    DEVICE_ROLE = Qt.ItemDataRole.UserRole + 2
    # Some row's searchable text or status changed (not just its numbers): a
    # filter may now take or drop it. The proxy re-filters on this, not on
    # every dataChanged.
    reclassified = Signal()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[FleetRow] = []
        self._index_map: dict[str, int] | None = {}  # device id -> row; see _index
        self._sort_col: Col | None = Col.DEVICE_ID
        self._sort_order = Qt.SortOrder.AscendingOrder
        self.now_s = time.time  # replaceable clock, for tests
        self._status_colours = {k: QColor(v) for k, v in STATUS_COLOURS.items()}
        self._status_dots: dict[str, QPixmap] = {}
        self._italic = QFont()
        self._italic.setItalic(True)
        self._reclassify = False
        # device ids and their ranks among all ids, in row order (see _sort_rows)
        self._ids: np.ndarray[Any, np.dtype[np.object_]] = np.empty(0, dtype=object)
        self._id_rank: np.ndarray[Any, np.dtype[np.int64]] | None = None
        # the rows are in sort order and nothing changed since (a repeated sort
        # of the same column, as the view's header asks, is free)
        self._order_valid = False
        # the last sort's permutation (new row -> old row), for a proxy that
        # keeps its filter through a re-order without re-filtering
        self.last_order: np.ndarray[Any, np.dtype[np.intp]] | None = None
        # per sorted column, its keys in row order; rows changed since the last sort
        self._keys: dict[Col, np.ndarray[Any, Any]] = {}
        self._dirty: set[int] = set()
        # the rows of the ``dataChanged`` being emitted, for a proxy that repaints
        # only those of them its view shows (``DeviceFilterProxy.show_in``)
        self.changed_rows: set[int] | None = None

    # -- loading ---------------------------------------------------------------------
    def load(
        self,
        devices: Sequence[Device],
        latest_values: Mapping[str, Mapping[str, float]] | None = None,
        alert_counts: Mapping[str, int] | None = None,
        worst: Mapping[str, Severity] | None = None,
    ) -> None:
        """A whole reload (F5 or first load): the only place the model resets.
        ``worst``: each device's most severe open alert (its health)."""
        latest_values = latest_values or {}
        alert_counts = alert_counts or {}
        worst = worst or {}
        rows = [_row_of(d, latest_values, alert_counts, worst) for d in devices]
        self.beginResetModel()
        self._rows = rows
        self._id_rank = None
        self.last_order = None
        self._dirty.clear()
        # every column's sort keys now, with the load: a click on a header
        # then costs one lexsort, not a pass over 100,000 row objects
        self._keys = {col: _sort_key_array(rows, col) for col in Col if col is not Col.DEVICE_ID}
        self._sort_rows()
        self.endResetModel()

    # -- live updates ----------------------------------------------------------------
    def apply_events(self, events: Iterable[FleetEvent]) -> set[str]:
        """Apply telemetry and device events; returns the ids of devices that changed."""
        changed: set[int] = set()
        new_devices: dict[str, Device] = {}
        touched: set[str] = set()
        for event in events:
            if isinstance(event, TelemetryReceived):
                row_no = self._index.get(event.device_id)
                if row_no is None:
                    continue  # not registered (yet); the device event will add it
                if self._apply_readings(self._rows[row_no], event):
                    changed.add(row_no)
                    touched.add(event.device_id)
            elif type(event) is TableSamples:
                self._apply_samples(event, changed, touched)
            elif isinstance(event, DeviceChanged):
                device = event.device
                row_no = self._index.get(device.device_id)
                if row_no is None:
                    new_devices[device.device_id] = device
                else:
                    self._replace_device(self._rows[row_no], device)
                    changed.add(row_no)
                touched.add(device.device_id)
        self._emit_changed(changed)
        if new_devices:
            self._append(list(new_devices.values()))
        return touched

    def upsert_devices(self, devices: Iterable[Device]) -> None:
        changed: set[int] = set()
        new: list[Device] = []
        for device in devices:
            row_no = self._index.get(device.device_id)
            if row_no is None:
                new.append(device)
            else:
                self._replace_device(self._rows[row_no], device)
                changed.add(row_no)
        self._emit_changed(changed)
        if new:
            self._append(new)

    def add_page(
        self,
        devices: Sequence[Device],
        latest_values: Mapping[str, Mapping[str, float]] | None = None,
        alert_counts: Mapping[str, int] | None = None,
        worst: Mapping[str, Severity] | None = None,
    ) -> None:
        """A further page of a load that fills in the background (the first
        went through ``load``): its devices are appended, or updated when a
        live event added them meanwhile, with their values, as rows inserted,
        never a reset, so the view keeps its scroll position and selection."""
        latest_values = latest_values or {}
        alert_counts = alert_counts or {}
        worst = worst or {}
        index = self._index
        known = [d for d in devices if d.device_id in index]
        if known:  # added by a live event while the page was on its way
            self.upsert_devices(known)
        # new rows built whole, in one pass: one insert, no dataChanged after it
        self._append_rows([_row_of(d, latest_values, alert_counts, worst)
                           for d in devices if d.device_id not in index])

    def sync_devices(self, devices: Iterable[Device]) -> int:
        """The registry as it is now (a periodic re-read): rows whose device
        record differs are replaced, unknown devices appended, the rest left
        alone, so a status change whose live event was missed (published
        before the page subscribed, or while the registry write-back had not
        happened yet) still reaches the list. Returns the rows changed."""
        changed: set[int] = set()
        new: list[Device] = []
        for device in devices:
            row_no = self._index.get(device.device_id)
            if row_no is None:
                new.append(device)
                continue
            current = self._rows[row_no].device
            if device == current:
                continue
            seen_newer = (current.last_seen is not None and device.last_seen is not None
                          and current.last_seen > device.last_seen)
            if not _same_but_last_seen(device, current) or (
                    device.last_seen != current.last_seen and not seen_newer):
                self._replace_device(self._rows[row_no], device)
                changed.add(row_no)
        self._emit_changed(changed)
        if new:
            self._append(new)
        return len(changed) + len(new)

    def set_alert_counts(self, counts: Mapping[str, int],
                         worst: Mapping[str, Severity | None] | None = None) -> None:
        """Open-alert counts and, when given, worst open severities (the
        health the status column shows) of some devices."""
        changed = set()
        for device_id, count in counts.items():
            row_no = self._index.get(device_id)
            if row_no is not None and self._rows[row_no].alerts != count:
                self._rows[row_no].alerts = int(count)
                changed.add(row_no)
        health_changed = set()
        for device_id, severity in (worst or {}).items():
            row_no = self._index.get(device_id)
            if row_no is not None and self._rows[row_no].worst is not severity:
                self._rows[row_no].worst = severity
                self._rows[row_no].refresh_haystack()
                self._reclassify = True
                health_changed.add(row_no)
        self._emit_changed(health_changed)
        changed -= health_changed
        self._emit_changed(changed, first=Col.ALERTS, last=Col.ALERTS)

    def _apply_readings(self, row: FleetRow, event: TelemetryReceived) -> bool:
        changed = False
        newest: dict[str, Reading] = {}
        keep_newest(newest, event.readings)
        for reading in newest.values():
            ts = reading.ts.timestamp()
            if row.last_seen_s is None or ts > row.last_seen_s:
                row.last_seen_s = ts
                changed = True
        if BATTERY_METRIC in newest:
            row.battery = newest[BATTERY_METRIC].value
            changed = True
        if RSSI_METRIC in newest:
            row.rssi = newest[RSSI_METRIC].value
            changed = True
        return self._note_firmware(row, event.firmware) or changed

    def _note_firmware(self, row: FleetRow, firmware: str) -> bool:
        """A message's firmware, when it reports a new one: searchable, and a
        firmware filter may now take or drop the row. Whether it changed."""
        if not firmware or firmware == row.device.firmware_version:
            return False
        row.device = replace(row.device, firmware_version=firmware)
        row.refresh_haystack()
        self._reclassify = True
        return True

    def _apply_samples(self, samples: TableSamples, changed: set[int],
                       touched: set[str]) -> None:
        """What ``_apply_readings`` does with a message's battery, RSSI, time
        and firmware, from columns: no reading or event object per message."""
        index, rows = self._index, self._rows
        for device_id, ts_ms, battery, rssi, firmware in zip(
                samples.device_ids, samples.ts_ms, samples.battery, samples.rssi,
                samples.firmware, strict=True):
            row_no = index.get(device_id)
            if row_no is None:
                continue  # not registered (yet); the device event will add it
            row = rows[row_no]
            ts = ts_ms / 1000
            if row.last_seen_s is None or ts > row.last_seen_s:
                row.last_seen_s = ts
            if battery is not None:
                row.battery = battery
            if rssi is not None:
                row.rssi = rssi
            self._note_firmware(row, firmware)
            changed.add(row_no)
            touched.add(device_id)

    def _replace_device(self, row: FleetRow, device: Device) -> None:
        self._reclassify = True
        row.device = device
        if device.last_seen is not None:
            ts = device.last_seen.timestamp()
            if row.last_seen_s is None or ts > row.last_seen_s:
                row.last_seen_s = ts
        row.refresh_haystack()

    def _append(self, devices: list[Device]) -> None:
        rows = []
        for device in devices:
            row = FleetRow(device, last_seen_s=device.last_seen.timestamp()
                           if device.last_seen else None)
            row.refresh_haystack()
            rows.append(row)
        self._append_rows(rows)

    def _append_rows(self, rows: list[FleetRow]) -> None:
        if not rows:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        for offset, row in enumerate(rows):
            self._rows.append(row)
            self._index[row.device.device_id] = first + offset
        self._id_rank = None
        self._refresh_keys()
        added = self._rows[first:]
        for col, cached in list(self._keys.items()):
            if col is Col.FIRMWARE:  # ranks: a new version may fall between them
                del self._keys[col]
            else:
                self._keys[col] = np.concatenate([cached, _sort_key_array(added, col)])
        self._order_valid = False
        self.endInsertRows()

    def _emit_changed(self, rows: set[int], first: int = 0, last: int = _LAST_COL) -> None:
        """One ``dataChanged`` from the first to the last changed row. At 10,000
        devices a batch touches rows all over the table: one signal per
        contiguous range was thousands of Qt calls per batch, each a chance for
        the in-process hub to take the GIL. A view repaints only what it shows,
        and the proxy does not re-filter on data changes (see DeviceFilterProxy),
        so the wider span costs nothing."""
        if rows:
            self._order_valid = False
            self._dirty.update(rows)
            self.changed_rows = rows
            try:
                safe_emit(self.dataChanged, self.index(min(rows), first),
                          self.index(max(rows), last))
            finally:
                self.changed_rows = None
        if self._reclassify:
            self._reclassify = False
            safe_emit(self.reclassified)

    # -- sorting ---------------------------------------------------------------------
    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        sort_col = Col(column) if 0 <= column < len(Col) else None
        if (self._order_valid and sort_col is self._sort_col
                and order == self._sort_order):
            return
        self._sort_col = sort_col
        self._sort_order = order
        if not self._rows:
            return
        safe_emit(self.layoutAboutToBeChanged)
        persistent = self.persistentIndexList()
        # only the rows a view holds on to (current, selection) are followed
        old_rows = [p.row() for p in persistent]
        self._sort_rows()
        if persistent and self.last_order is not None:
            # where each old row went: the inverse of the sort's permutation
            new_row = np.empty(len(self.last_order), np.int64)
            new_row[self.last_order] = np.arange(len(self.last_order))
            self.changePersistentIndexList(
                persistent,
                [self.index(int(new_row[r]), p.column())
                 for r, p in zip(old_rows, persistent, strict=True)],
            )
        safe_emit(self.layoutChanged)

    def _sort_rows(self) -> None:
        """Reorder the rows by the sort column, ties by ascending device id
        (what a sort by id then a stable sort by the column gives, either
        direction), with one numpy ``lexsort``: no Python key function or
        comparison per row. The keys of each column sorted by are kept as a
        numpy array in row order (``_column_keys``), as are the device ids and
        their ranks, so a sort touches row objects only to reorder them."""
        rows = self._rows
        self.last_order = None
        if self._id_rank is None or len(self._id_rank) != len(rows):
            ids = np.array([r.device.device_id for r in rows], dtype=object)
            id_rank = np.empty(len(rows), np.int64)
            id_rank[np.argsort(ids.astype(str), kind="stable")] = np.arange(len(rows))
            self._ids, self._id_rank = ids, id_rank
            for col, cached in list(self._keys.items()):
                if len(cached) != len(rows):
                    del self._keys[col]
        self._refresh_keys()  # the changed row numbers hold only until the reorder
        if self._sort_col is not None and rows:
            id_rank = self._id_rank
            keys = self._column_keys(self._sort_col)
            if self._sort_order == Qt.SortOrder.DescendingOrder:
                # descending by key, ascending by id: the ascending order of
                # (key, descending id) reversed
                order = (np.argsort(id_rank) if keys is None
                         else np.lexsort((-id_rank, keys)))[::-1]
            else:
                order = np.argsort(id_rank) if keys is None else np.lexsort((id_rank, keys))
            self._rows = list(map(rows.__getitem__, order.tolist()))
            self.last_order = order
            self._ids, self._id_rank = self._ids[order], id_rank[order]
            for col, cached in self._keys.items():
                self._keys[col] = cached[order]
        self._index_map = None  # rebuilt when first asked for (_index)
        self._order_valid = True

    def _refresh_keys(self) -> None:
        dirty, self._dirty = self._dirty, set()
        if dirty:
            for cached_col, cached in list(self._keys.items()):
                if not _update_keys(cached, self._rows, cached_col, dirty):
                    del self._keys[cached_col]

    @property
    def _index(self) -> dict[str, int]:
        """Device id -> row, rebuilt lazily after a sort from the ids in row
        order: a click on a header does not pay for it, the next live batch
        or look-up does (once)."""
        index = self._index_map
        if index is None:
            ids = self._ids.tolist()
            index = self._index_map = dict(zip(ids, range(len(ids)), strict=True))
        return index

    def _column_keys(self, col: Col) -> np.ndarray[Any, Any] | None:
        """The sort keys of ``col`` in row order: built at the first sort by
        it; after that only the rows changed since (``_dirty``) are refreshed
        (``_refresh_keys``)."""
        if col is Col.DEVICE_ID:
            return None
        keys = self._keys.get(col)
        if keys is None:
            keys = self._keys[col] = _sort_key_array(self._rows, col)
        return keys

    @property
    def sort_column(self) -> int:
        return -1 if self._sort_col is None else int(self._sort_col)

    @property
    def sort_order(self) -> Qt.SortOrder:
        return self._sort_order

    # -- access ----------------------------------------------------------------------
    def row_data(self, row: int) -> FleetRow:
        return self._rows[row]

    def device(self, row: int) -> Device:
        return self._rows[row].device

    def row_of(self, device_id: str) -> int | None:
        return self._index.get(device_id)

    def rows(self) -> list[FleetRow]:
        return self._rows

    def distinct(self, what: str) -> list[str]:
        """Values present in the data for a filter list: status, type, tag, organization,
        firmware."""
        values: set[str] = set()
        for row in self._rows:
            d = row.device
            if what == "tag":
                values.update(d.tags)
            elif what == "status":
                values.add(row.status.value)
            elif what == "type":
                values.add(d.device_type)
            elif what == "organization":
                values.add(d.organization)
            elif what == "firmware":
                values.add(d.firmware_version or "")
        if what == "status":
            order = [s.value for s in DeviceStatus]
            return [s for s in order if s in values]
        if what == "firmware":
            return sorted(values, key=_version_key)
        return sorted(values)

    def export_value(self, row: int, col: int) -> str:
        """What the CSV holds: exact values (ISO times, plain numbers)."""
        r = self._rows[row]
        c = Col(col)
        if c is Col.LAST_SEEN:
            if r.last_seen_s is None:
                return ""
            return datetime.fromtimestamp(r.last_seen_s, UTC).isoformat(timespec="seconds")
        if c is Col.BATTERY:
            return "" if r.battery is None else f"{r.battery:g}"
        if c is Col.RSSI:
            return "" if r.rssi is None else f"{r.rssi:g}"
        if c is Col.NAME:
            return r.device.name  # the registered name only, not the stand-in
        return self._text(r, c)

    # -- Qt model API ----------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else _N_COLS

    def _text(self, r: FleetRow, c: Col) -> str:
        d = r.device
        if c is Col.STATUS:
            return status_label(r.status)
        if c is Col.DEVICE_ID:
            return d.device_id
        if c is Col.NAME:
            return shown_name(d)
        if c is Col.TYPE:
            return d.device_type
        if c is Col.ORGANIZATION:
            return d.organization
        if c is Col.FIRMWARE:
            return d.firmware_version or ""
        if c is Col.LAST_SEEN:
            return relative_time(r.last_seen_s, self.now_s())
        if c is Col.BATTERY:
            return _fmt_number(r.battery)
        if c is Col.RSSI:
            return _fmt_number(r.rssi)
        return str(r.alerts) if r.alerts else ""

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        return self.cell(index.row(), index.column(), role)

    def cell(self, row: int, column: int, role: int) -> Any:
        """``data`` by row number (what ``data`` and the proxy's ``data`` use).

        Each role has its own method, found by the role's plain number: a
        chain of ``role == Qt.ItemDataRole.X`` tests looked up Qt's enum
        attributes several times a call, and the table asks thousands of
        cells a second."""
        answer = _ROLE_ANSWERS.get(role)
        if answer is None:
            return None
        return answer(self, self._rows[row], _COLS[column])

    def fill_cell(self, row: int, column: int, roles: QModelRoleDataSpan) -> None:
        """Every role Qt's delegate asks for one cell, in one call from Qt.

        The delegate asks seven roles a cell (font, alignment, colour, check
        state, icon, text, background) through ``multiData``; answered one by
        one, that is seven calls from C++ into Python, and each one takes the
        GIL back from the console's network and feed threads. At 10,000 live
        devices a repaint of the table was 2,100 such calls and waited up to
        100 ms for the GIL (``fill_roles`` writes the slots).
        """
        r = self._rows[row]
        c = _COLS[column]

        def answer(role: int) -> Any:
            found = _ROLE_ANSWERS.get(role)
            return None if found is None else found(self, r, c)

        fill_roles(roles, answer)

    def _foreground(self, r: FleetRow, c: Col) -> QColor | None:
        if c is Col.STATUS:
            return self._status_colours.get(r.status.value)
        if c is Col.ALERTS and r.alerts:
            return self._status_colours["error"]
        if c is Col.BATTERY and r.battery is not None and r.battery < 20:
            return self._status_colours["warning"]
        if c is Col.NAME and not r.device.name:
            return self._status_colours["offline"]  # a stand-in, not a registered name
        return None

    def _font(self, r: FleetRow, c: Col) -> QFont | None:
        return self._italic if c is Col.NAME and not r.device.name else None

    def _decoration(self, r: FleetRow, c: Col) -> QPixmap | None:
        return self._dot(r.status.value) if c is Col.STATUS else None

    def _tooltip(self, r: FleetRow, c: Col) -> str | None:
        if c is Col.LAST_SEEN and r.last_seen_s is not None:
            exact = datetime.fromtimestamp(r.last_seen_s, UTC).astimezone()
            return exact.strftime("%Y-%m-%d %H:%M:%S %Z")
        if c is Col.NAME:
            tags = ("Tags: " + ", ".join(sorted(r.device.tags))) if r.device.tags else ""
            if not r.device.name:
                unnamed = "No name registered: shown by type and number"
                return f"{unnamed}\n{tags}" if tags else unnamed
            return tags or None
        return None

    def _alignment(self, r: FleetRow, c: Col) -> int | None:
        return _RIGHT if c in NUMERIC else None

    def _sort_value(self, r: FleetRow, c: Col) -> Any:
        return _sort_key(r, c) if c in NUMERIC else self._text(r, c)

    def _device_of(self, r: FleetRow, c: Col) -> Device:
        return r.device

    def _dot(self, status: str) -> QPixmap:
        dot = self._status_dots.get(status)
        if dot is None:
            dot = QPixmap(10, 10)
            dot.fill(Qt.GlobalColor.transparent)
            painter = QPainter(dot)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(self._status_colours.get(status, QColor("#6b7280")))
            painter.drawEllipse(1, 1, 8, 8)
            painter.end()
            self._status_dots[status] = dot
        return dot

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return HEADERS[Col(section)]
            if role == Qt.ItemDataRole.TextAlignmentRole and Col(section) in NUMERIC:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


_COLS = tuple(Col)  # by position: Col(n) is an enum lookup per painted cell
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
# role number -> FleetTableModel's answer for a row and column (see cell)
_ROLE_ANSWERS: dict[int, Any] = {
    int(Qt.ItemDataRole.DisplayRole): FleetTableModel._text,
    int(Qt.ItemDataRole.ForegroundRole): FleetTableModel._foreground,
    int(Qt.ItemDataRole.FontRole): FleetTableModel._font,
    int(Qt.ItemDataRole.DecorationRole): FleetTableModel._decoration,
    int(Qt.ItemDataRole.ToolTipRole): FleetTableModel._tooltip,
    int(Qt.ItemDataRole.TextAlignmentRole): FleetTableModel._alignment,
    int(FleetTableModel.SORT_ROLE): FleetTableModel._sort_value,
    int(FleetTableModel.DEVICE_ROLE): FleetTableModel._device_of,
}

_COMPARED = tuple(f.name for f in fields(Device) if f.compare and f.name != "last_seen")


def _row_of(device: Device, latest_values: Mapping[str, Mapping[str, float]],
            alert_counts: Mapping[str, int], worst: Mapping[str, Severity]) -> FleetRow:
    values = latest_values.get(device.device_id, {})
    row = FleetRow(
        device,
        battery=_as_float(values.get(BATTERY_METRIC)),
        rssi=_as_float(values.get(RSSI_METRIC)),
        alerts=int(alert_counts.get(device.device_id, 0)),
        last_seen_s=device.last_seen.timestamp() if device.last_seen else None,
        worst=worst.get(device.device_id),
    )
    row.refresh_haystack()
    return row


def _same_but_last_seen(a: Device, b: Device) -> bool:
    """``replace(a, last_seen=b.last_seen) == b`` without building a Device (its
    validation ran 10,000 times per registry re-read at 10,000 devices)."""
    return all(getattr(a, name) == getattr(b, name) for name in _COMPARED)


def contiguous_ranges(rows: Iterable[int]) -> list[tuple[int, int]]:
    """[1, 2, 3, 7, 9, 10] -> [(1, 3), (7, 7), (9, 10)]."""
    out: list[tuple[int, int]] = []
    for row in sorted(rows):
        if out and row == out[-1][1] + 1:
            out[-1] = (out[-1][0], row)
        else:
            out.append((row, row))
    return out


def _as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# -- filtering ---------------------------------------------------------------------------
@dataclass
class FilterState:
    """What narrows the table; also what a saved filter stores."""

    text: str = ""
    statuses: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)
    organizations: set[str] = field(default_factory=set)
    firmware: set[str] = field(default_factory=set)

    def is_empty(self) -> bool:
        return not (self.text.strip() or self.statuses or self.types or self.tags
                    or self.organizations or self.firmware)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "statuses": sorted(self.statuses),
                "types": sorted(self.types), "tags": sorted(self.tags),
                "organizations": sorted(self.organizations), "firmware": sorted(self.firmware)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FilterState:
        def strings(key: str) -> set[str]:
            value = raw.get(key, [])
            return {str(v) for v in value} if isinstance(value, list) else set()

        return cls(text=str(raw.get("text", "")), statuses=strings("statuses"),
                   types=strings("types"), tags=strings("tags"),
                   organizations=strings("organizations"), firmware=strings("firmware"))

    def accepts(self, row: FleetRow, terms: list[str]) -> bool:
        d = row.device
        if self.statuses and row.status.value not in self.statuses:
            return False
        if self.types and d.device_type not in self.types:
            return False
        if self.organizations and d.organization not in self.organizations:
            return False
        if self.firmware and (d.firmware_version or "") not in self.firmware:
            return False
        if self.tags and self.tags.isdisjoint(d.tags):
            return False
        haystack = row.haystack
        return all(term in haystack for term in terms)


def accepted_rows(rows: Sequence[FleetRow], state: FilterState, terms: list[str]) -> list[int]:
    """The rows ``state.accepts``, in order, computed one criterion at a time
    over the rows still in (one comprehension each, no call per row): at
    100,000 rows a call per row per filter was most of a filter's time."""
    keep: Iterable[int] = range(len(rows))
    if state.statuses:
        statuses = state.statuses
        keep = [i for i in keep if rows[i].status.value in statuses]
    if state.types:
        types = state.types
        keep = [i for i in keep if rows[i].device.device_type in types]
    if state.organizations:
        orgs = state.organizations
        keep = [i for i in keep if rows[i].device.organization in orgs]
    if state.firmware:
        firmware = state.firmware
        keep = [i for i in keep if (rows[i].device.firmware_version or "") in firmware]
    if state.tags:
        tags = state.tags
        keep = [i for i in keep if not tags.isdisjoint(rows[i].device.tags)]
    for term in terms:
        keep = [i for i in keep if term in rows[i].haystack]
    return list(keep)


_CELL_FLAGS = (Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
               | Qt.ItemFlag.ItemNeverHasChildren)  # a QAbstractTableModel's cell


class DeviceFilterProxy(QAbstractProxyModel):
    """The fleet model's rows as the table shows them: filtered here, sorted
    by the source model (see module doc).

    Every search term must appear in the device id, name, type, organization,
    firmware, status, tags or location label (case-insensitive).

    Not a QSortFilterProxyModel: that one asks Python ``filterAcceptsRow`` once
    per source row whenever the filter or the order changes (100,000 calls,
    70 ms of CPU even when nothing is filtered). Here the accepted source rows
    are computed in one pass (``accepted_rows``) and kept as a list plus a
    numpy source-to-view map; with no filter the mapping is the identity and
    nothing is computed at all. Every change of filter or order is one
    ``layoutChanged`` with the view's current and selected rows following
    their devices.
    """

    REFILTER_MS = 250
    # Above this many rows, live changes are repainted at most once a period.
    LARGE_FLEET_ROWS = 1_000
    LARGE_FLEET_REPAINT_MS = 1_000

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._state = FilterState()
        self._terms: list[str] = []
        self._active = False
        self._fleet: FleetTableModel | None = None
        self._visible: list[int] = []  # source rows in view order, when filtering
        self._view_of: np.ndarray[Any, np.dtype[np.int64]] = np.empty(0, np.int64)
        self._held: list[QPersistentModelIndex] = []  # across a source layout change
        self._view: QTableView | None = None  # see show_in
        # Not re-filtered on every dataChanged: most live changes (readings,
        # last seen) cannot change what a filter takes. The model says when one
        # can (``reclassified``); then the proxy re-filters, at most every 250 ms.
        self._refilter = QTimer(self)
        self._refilter.setSingleShot(True)
        self._refilter.setInterval(self.REFILTER_MS)
        self._refilter.timeout.connect(self._refilter_now)
        # A large fleet's changed rows are repainted together (see _hold_repaint).
        self._repaint_rows: set[int] = set()  # source rows changed since the last repaint
        self._repaint_columns = (_LAST_COL, 0)  # the changed columns' span (empty)
        self._repaint = QTimer(self)
        self._repaint.setSingleShot(True)
        self._repaint.setInterval(self.LARGE_FLEET_REPAINT_MS)
        self._repaint.timeout.connect(self._repaint_held)

    # -- source wiring ---------------------------------------------------------------
    def setSourceModel(self, model: Any) -> None:
        old = self._fleet
        if old is not None:
            for signal, slot in self._source_links(old):
                signal.disconnect(slot)
        self.beginResetModel()
        self._fleet = model if isinstance(model, FleetTableModel) else None
        super().setSourceModel(model)
        fleet = self._fleet
        if fleet is not None:
            for signal, slot in self._source_links(fleet):
                signal.connect(slot)
        self._recompute()
        self.endResetModel()

    def _source_links(self, fleet: FleetTableModel) -> list[tuple[Any, Any]]:
        """The source's signals this proxy follows, in one list so connecting
        and disconnecting can never drift apart."""
        return [(fleet.reclassified, self._reclassified),
                (fleet.modelAboutToBeReset, self.beginResetModel),
                (fleet.modelReset, self._source_reset),
                (fleet.layoutAboutToBeChanged, self._source_layout_about),
                (fleet.layoutChanged, self._source_layout_changed),
                (fleet.dataChanged, self._source_data_changed),
                (fleet.rowsInserted, self._source_rows_inserted)]

    def _source_reset(self) -> None:
        self._forget_held_repaint()
        self._recompute()
        self.endResetModel()

    def _source_layout_about(self) -> None:
        """The source is about to reorder: remember the source rows behind the
        view's persistent indexes (as source persistent indexes, which the
        source moves with their devices)."""
        safe_emit(self.layoutAboutToBeChanged)
        self._held = [QPersistentModelIndex(self.mapToSource(p))
                      for p in self.persistentIndexList()]

    def _source_layout_changed(self) -> None:
        self._forget_held_repaint()
        mine = self.persistentIndexList()
        held, self._held = self._held, []
        order = self._fleet.last_order if self._fleet is not None else None
        if self._active and order is not None and len(order) == len(self._view_of):
            # the same rows are taken, in the new order: the mask permuted,
            # no filter pass (a change that could alter it re-filters anyway)
            visible = np.flatnonzero((self._view_of >= 0)[order])
            self._visible = visible.tolist()
            self._view_of = np.full(len(order), -1, np.int64)
            self._view_of[visible] = np.arange(len(visible))
        else:
            self._recompute()
        if mine and len(held) == len(mine):
            self.changePersistentIndexList(
                mine, [self.mapFromSource(self.sourceModel().index(h.row(), p.column()))
                       if h.isValid() else QModelIndex() for h, p in zip(held, mine, strict=True)])
        safe_emit(self.layoutChanged)

    def show_in(self, view: QTableView) -> None:
        """Live changes repaint only the changed rows ``view`` shows.

        The fleet model sends one ``dataChanged`` per batch, from its first to its
        last changed row (one signal instead of thousands). At 10,000 devices that
        span covers the whole table, and Qt repaints every cell it shows for it:
        ten times a second, about 2,100 calls into Python for the 30 rows of a
        1400x900 window, each taking the GIL back from the console's other
        threads; that was most of the devices page's long stalls. A device reports
        once a second, so of those 30 rows about three changed in a batch; only
        theirs are repainted now (one signal per run of adjacent changed rows on
        screen)."""
        self._view = view

    def _shown_changes(self, changed: set[int]) -> list[int] | None:
        """The view rows among ``changed`` (source rows) that the view shows;
        None when no view is known or it is not on screen."""
        view = self._view
        if view is None or not view.isVisible():
            return None
        first = max(view.rowAt(0), 0)
        last = view.rowAt(view.viewport().height() - 1)
        last = self.rowCount() - 1 if last < 0 else last
        if not self._active:
            return [r for r in changed if first <= r <= last]
        view_of = self._view_of
        rows = np.fromiter(changed, np.int64, len(changed))
        rows = view_of[rows[rows < len(view_of)]]
        shown: list[int] = rows[(rows >= first) & (rows <= last)].tolist()
        return shown

    def _source_data_changed(self, top: QModelIndex, bottom: QModelIndex,
                             roles: Sequence[int] = ()) -> None:
        n = self.rowCount()
        if not n:
            return
        changed = self._fleet.changed_rows if self._fleet is not None else None
        if changed is not None and n > self.LARGE_FLEET_ROWS and self._view is not None:
            self._hold_repaint(changed, top.column(), bottom.column())
            return
        shown = self._shown_changes(changed) if changed is not None else None
        if shown is not None:
            self._emit_shown(shown, top.column(), bottom.column())
            return
        if not self._active:
            first, last = top.row(), bottom.row()
        else:
            # the view repaints only what it shows: one span is enough
            first, last = 0, n - 1
        safe_emit(self.dataChanged, self.index(first, top.column()),
                  self.index(last, bottom.column()))

    def _emit_shown(self, shown: list[int], left: int, right: int) -> None:
        for start, end in row_ranges(shown):
            safe_emit(self.dataChanged, self.index(start, left), self.index(end, right))

    def _hold_repaint(self, changed: set[int], left: int, right: int) -> None:
        """A large fleet's changed rows wait for one repaint a period.

        At 10,000 devices reporting every second, each 100 ms batch changed a
        few of the rows on screen, and every batch repainted them: ten paints
        a second, each a stall of 30-100 ms while the feed competes for the
        cores. The model holds the new values at once (sorting, filters and
        exports see them); only the repaint waits, and a row that changed
        twice meanwhile is painted once. A device reports once a second, so a
        repaint a second shows each of them as it comes."""
        self._repaint_rows |= changed
        lo, hi = self._repaint_columns
        self._repaint_columns = (min(lo, left), max(hi, right))
        if not self._repaint.isActive():
            self._repaint.start()

    def _repaint_held(self) -> None:
        rows, self._repaint_rows = self._repaint_rows, set()
        (left, right), self._repaint_columns = self._repaint_columns, (_LAST_COL, 0)
        shown = self._shown_changes(rows) if rows else None
        if shown and left <= right:
            self._emit_shown(shown, left, right)

    def _forget_held_repaint(self) -> None:
        """The source's rows moved or were replaced: its old row numbers mean
        nothing now, and the view repaints everything for the change anyway."""
        self._repaint_rows = set()
        self._repaint_columns = (_LAST_COL, 0)
        self._repaint.stop()

    def _source_rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        """New devices are appended by the source: appended here too if taken."""
        fleet = self._fleet
        if fleet is None:
            return
        if not self._active:
            self.beginInsertRows(QModelIndex(), first, last)
            self.endInsertRows()
            return
        rows = fleet.rows()
        new = [first + i for i in accepted_rows(rows[first:last + 1], self._state, self._terms)]
        view_of = np.full(len(rows), -1, np.int64)
        view_of[: len(self._view_of)] = self._view_of
        if not new:
            self._view_of = view_of
            return
        start = len(self._visible)
        self.beginInsertRows(QModelIndex(), start, start + len(new) - 1)
        self._visible.extend(new)
        view_of[new] = np.arange(start, start + len(new))
        self._view_of = view_of
        self.endInsertRows()

    # -- filtering -------------------------------------------------------------------
    def _recompute(self) -> None:
        fleet = self._fleet
        if fleet is None or not self._active:
            self._visible = []
            self._view_of = np.empty(0, np.int64)
            return
        rows = fleet.rows()
        self._visible = accepted_rows(rows, self._state, self._terms)
        view_of = np.full(len(rows), -1, np.int64)
        view_of[self._visible] = np.arange(len(self._visible))
        self._view_of = view_of

    def _reclassified(self) -> None:
        if self._active and not self._refilter.isActive():
            self._refilter.start()

    def _refilter_now(self) -> None:
        if self._active:
            self._relayout(self._state)

    def _relayout(self, state: FilterState) -> None:
        """Apply ``state`` as one layout change; persistent indexes (the view's
        current and selected rows) follow their devices, and those filtered
        out become invalid. Their source rows are read before the filter
        changes: the old mapping is the one they are in."""
        safe_emit(self.layoutAboutToBeChanged)
        mine = self.persistentIndexList()
        sources = [self.mapToSource(p) for p in mine]
        self._state = state
        self._terms = [t for t in state.text.lower().split() if t]
        self._active = not state.is_empty()
        self._recompute()
        if mine:
            self.changePersistentIndexList(mine, [self.mapFromSource(s) for s in sources])
        safe_emit(self.layoutChanged)

    @property
    def state(self) -> FilterState:
        return FilterState.from_dict(self._state.to_dict())

    def set_state(self, state: FilterState) -> None:
        state = FilterState.from_dict(state.to_dict())
        if self._active or not state.is_empty():
            self._relayout(state)
        else:
            self._state = state  # nothing was or is filtered: the view stays as it is

    def set_text(self, text: str) -> None:
        state = self.state
        state.text = text
        self.set_state(state)

    # -- Qt proxy API ----------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() or self._fleet is None:
            return 0
        return len(self._visible) if self._active else self._fleet.rowCount()

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else _N_COLS

    def hasChildren(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and self.rowCount() > 0

    def index(self, row: int, column: int,
              parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        if parent.isValid() or not (0 <= row < self.rowCount() and 0 <= column < _N_COLS):
            return QModelIndex()
        return self.createIndex(row, column)

    def parent(self, child: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        return QModelIndex()

    def sibling(self, row: int, column: int, idx: Index) -> QModelIndex:
        return self.index(row, column)

    def _source_row(self, proxy_index: Index) -> int | None:
        """The fleet's row behind a view row, or None (no source, invalid,
        past the end)."""
        fleet = self._fleet
        if fleet is None or not proxy_index.isValid():
            return None
        row = proxy_index.row()
        if self._active:
            return self._visible[row] if row < len(self._visible) else None
        return row if row < fleet.rowCount() else None

    def mapToSource(self, proxy_index: Index) -> QModelIndex:
        row = self._source_row(proxy_index)
        if row is None or self._fleet is None:
            return QModelIndex()
        return self._fleet.index(row, proxy_index.column())

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The cell straight from the fleet's row. Qt's own proxy ``data``
        calls Python three times per cell and role (``mapToSource``, the
        source's ``index`` and ``data``), and each call from Qt takes the GIL
        back from the console's other threads; painting the table at 10,000
        live devices was most of the window's stalls."""
        row = self._source_row(index)
        if row is None or self._fleet is None:
            return None
        return self._fleet.cell(row, index.column(), role)

    def multiData(self, index: Index, roleDataSpan: QModelRoleDataSpan) -> None:  # type: ignore[override]
        """All roles of a cell in one call from Qt (see FleetTableModel.fill_cell)."""
        row = self._source_row(index)
        if row is None or self._fleet is None:
            return
        self._fleet.fill_cell(row, index.column(), roleDataSpan)

    def flags(self, index: Index) -> Qt.ItemFlag:
        """Every cell is the same (Qt's proxy would map each to the source)."""
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return _CELL_FLAGS

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        fleet = self._fleet
        if fleet is None or orientation != Qt.Orientation.Horizontal:
            return None
        return fleet.headerData(section, orientation, role)

    def mapFromSource(self, source_index: Index) -> QModelIndex:
        if self._fleet is None or not source_index.isValid():
            return QModelIndex()
        row = source_index.row()
        if self._active and (
                row >= len(self._view_of) or (row := int(self._view_of[row])) < 0):
            return QModelIndex()
        return self.index(row, source_index.column())

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if self._fleet is not None:
            self._fleet.sort(column, order)

    def device(self, proxy_row: int) -> Device:
        source = self.mapToSource(self.index(proxy_row, 0))
        assert self._fleet is not None
        return self._fleet.device(source.row())

    def visible_rows(self) -> list[int]:
        """Source rows in view order."""
        if self._fleet is None:
            return []
        return list(self._visible) if self._active else list(range(self._fleet.rowCount()))
