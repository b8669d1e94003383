"""The Devices page: the fleet table with search, filters and a detail panel.

Data flow: the first load (registry + latest battery/RSSI + open alert counts)
runs on a worker thread; afterwards a LiveBridge delivers the backend's live
feed in coalesced batches and the model updates rows in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QMouseEvent, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from console.bridge import LiveBridge
from console.widgets.background import BackgroundCall
from console.widgets.column_chooser import ColumnChooser
from console.widgets.column_room import ColumnRoom, header_width
from console.widgets.role_note import RoleNote
from console.widgets.tables import configure_row_table
from core.context import AppContext
from core.errors import SmartIotError
from core.model import Device
from core.model.events import AlertChanged, DataChanged, FleetEvent
from core.model.roles import Actor, Permission
from core.ports.fleet_api import FleetApi
from core.ports.fleet_api.devices import (
    DeviceCapabilities,
    FleetOverview,
    FleetOverviewPage,
    OpenAlertSummary,
)
from core.ports.live import LiveFeed
from core.text import plural
from plugins.devices.csv_export import write_csv
from plugins.devices.saved_filters import SavedFilters
from plugins.devices.widgets.detail import DeviceDetail
from plugins.devices.widgets.fleet_model import (
    HEADERS,
    Col,
    DeviceFilterProxy,
    FilterState,
    FleetTableModel,
)
from plugins.devices.widgets.register_dialog import RegisterDeviceDialog

FILTERS = (("status", "Status", "statuses"), ("type", "Type", "types"), ("tag", "Tag", "tags"),
           ("organization", "Organization", "organizations"), ("firmware", "Firmware", "firmware"))
LIVE_SEARCH_LIMIT = 20_000  # above this many devices the search waits for a typing pause
# Live events carry status changes; this re-read catches the ones a page could
# not have heard (before it subscribed, or from another console).
REGISTRY_SYNC_MS = 10_000
REGISTRY_SYNC_DEVICES = 2_000  # a fleet up to this size is re-read every REGISTRY_SYNC_MS
REGISTRY_SYNC_MAX_MS = 60_000
# A re-read is compared with the table this many devices per turn of the event
# loop: 10,000 at once held the window for 26-40 ms, a visible stall every period.
SYNC_SLICE = 1_000
RELATIVE_TIME_REFRESH_MS = 1_000  # "Last seen" ages in step with the clock
COLUMN_WIDTHS = {Col.STATUS: 120, Col.DEVICE_ID: 120, Col.NAME: 180, Col.TYPE: 120,
                 Col.ORGANIZATION: 110, Col.FIRMWARE: 90, Col.LAST_SEEN: 100, Col.BATTERY: 84,
                 Col.RSSI: 84, Col.ALERTS: 96}
# the style sheet's cell padding (6 px a side), the delegate's text margins, the grid line
CELL_PADDING_PX = 12 + 8 + 4
STATUS_DOT_PX = 10 + 8  # the status column's dot and the gap after it
STATUS_TEXTS = ("online", "offline", "warning", "critical", "error")  # what it shows whole
NAME_MIN_PX = 170  # "Meeting room 2, north wing", nearly
EMPTY_FLEET = "No devices registered yet.\nDevices appear here when they first connect, " \
              "or register one with “Register…”."
EMPTY_MATCH = "No devices match the search and filters."


def registry_sync_ms(devices: int) -> int:
    """How often the registry is re-read for a fleet of this size. A re-read
    builds every device on a worker thread of the console (0.3 s of CPU at
    10,000 devices), which the window waits for at each of its calls into
    Python while it runs; the live events carry the changes in the meantime,
    so a larger fleet is re-read less often (every 50 s at 10,000)."""
    scaled = REGISTRY_SYNC_MS * devices // REGISTRY_SYNC_DEVICES
    return max(REGISTRY_SYNC_MS, min(REGISTRY_SYNC_MAX_MS, scaled))


# An empty table says one thing at a time: while the first answer is on its way it
# says so (not "No devices" beside a "Loading…" line), and a failed load is not
# taken for an empty fleet.
EMPTY_LOADING = "Loading devices…"
EMPTY_UNLOADED = "The devices could not be loaded (the reason is above); press F5 to retry."
# BackgroundCall keys: a newer call of the same kind supersedes an older one
LOAD, SYNC, FILL = "load", "sync", "fill"
# Devices per page of the first load: the first rows show after one page, the
# rest fill in behind them (an in-process backend answers in one page).
FILL_PAGE = 500


def cell_width(table: QTableView, text: str) -> int:
    """Pixels a cell needs to show ``text`` whole (the style's padding included)."""
    table.ensurePolished()  # the style sheet's font, not the default one
    return table.fontMetrics().horizontalAdvance(text) + CELL_PADDING_PX


@dataclass(frozen=True)
class FleetLoad:
    """What the first load brings: the person's use cases, the live feed, what
    the backend can do, and the table's rows."""

    api: FleetApi
    live: LiveFeed | None
    capabilities: DeviceCapabilities
    overview: FleetOverview
    next: str = ""  # more pages follow (filled in the background)
    total: int | None = None  # the fleet's size, when the backend said


class StickyMenu(QMenu):
    """A menu whose checkable entries toggle without closing it (multi-select lists)."""

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        action = self.activeAction()
        if action is not None and action.isEnabled() and action.isCheckable():
            action.trigger()
            return
        super().mouseReleaseEvent(event)


def export_view_csv(model: FleetTableModel, proxy: DeviceFilterProxy, path: Path) -> int:
    """Write the rows the table shows, in its order, with exact values; returns rows."""
    header = [HEADERS[c] for c in Col]
    rows = [[model.export_value(src, c) for c in Col] for src in proxy.visible_rows()]
    return write_csv(path, header, rows)


class DevicesPage(QWidget):
    """The Devices page.

    Give it an ``AppContext`` (its ``api`` is built on a worker thread on the
    first load) or a ready ``api`` with its ``live`` feed. Reads and changes go
    through ``api.devices``; everything live comes from the feed through a
    :class:`LiveBridge`.
    """

    def __init__(
        self,
        context: AppContext | None = None,
        *,
        api: FleetApi | None = None,
        live: LiveFeed | None = None,
        saved_filters_path: Path | None = None,
        bridge_interval_ms: int = 100,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._context = context
        self.api: FleetApi | None = api
        self._live = live
        self._focused_id: str | None = None
        self._unfocus: Callable[[], None] | None = None
        #: who acts; the devices use cases check the role and audit with it
        self.actor: Actor
        if api is not None:
            self.actor = api.actor
        elif context is not None:
            self.actor = context.actor
        else:
            raise ValueError("DevicesPage needs a context or an api")
        self.bridge: LiveBridge | None = None
        self._bridge_interval_ms = bridge_interval_ms
        self._background = BackgroundCall(self)
        self._alert_recount: set[str] = set()
        self._alert_job_running = False
        self._loading = False
        self._ever_loaded = False
        self._filling = False
        self._serves_device_target = False
        if saved_filters_path is None and context is not None:
            saved_filters_path = Path(context.config.path).parent / "saved_filters.json"
        self.saved_filters = SavedFilters(
            saved_filters_path or Path.home() / ".smartiot-saved_filters.json")
        #: where the list's shown columns are kept (with the saved filters)
        self._settings_dir = None if saved_filters_path is None else saved_filters_path.parent

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(8)
        layout.addLayout(self._build_top_bar())
        layout.addLayout(self._build_filter_bar())
        layout.addWidget(RoleNote(self.actor, [("Register…", Permission.DEVICE_REGISTER)]))
        layout.addWidget(self._build_status_line())
        layout.addWidget(self._build_splitter(), 1)
        self._start_timers()
        self._connect()
        self._add_shortcuts()

        self._reload_saved_names()
        self._update_filter_buttons()
        self._update_count()
        self.register_button.setEnabled(False)  # until the fleet has loaded
        self.refresh()

    # -- building ------------------------------------------------------------------------
    def _build_top_bar(self) -> QHBoxLayout:
        self.heading = QLabel("Devices")
        self.heading.setProperty("role", "title")
        self.count_label = QLabel("")
        self.count_label.setProperty("role", "secondary")
        self.fill_progress = QProgressBar()  # pages of a large fleet still arriving
        self.fill_progress.setMaximumWidth(140)
        self.fill_progress.setMaximumHeight(12)
        self.fill_progress.setTextVisible(False)
        self.fill_progress.setVisible(False)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search id, name, tag, type, firmware…  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(260)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Reload the fleet from the backend (F5)")
        self.register_button = QPushButton("Register…")
        self.register_button.setToolTip("Register a new device")
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Save the rows shown (filtered and sorted) as CSV")
        top = QHBoxLayout()
        top.addWidget(self.heading)
        top.addSpacing(8)
        top.addWidget(self.count_label, 0, Qt.AlignmentFlag.AlignBottom)
        top.addWidget(self.fill_progress, 0, Qt.AlignmentFlag.AlignVCenter)
        top.addStretch(1)
        top.addWidget(self.search, 2)
        for button in (self.refresh_button, self.register_button, self.export_button):
            top.addWidget(button)
        return top

    def _build_filter_bar(self) -> QHBoxLayout:
        """One drop-down of checkable values per filter, then the saved filters."""
        self.filter_buttons: dict[str, QToolButton] = {}
        self.filter_menus: dict[str, StickyMenu] = {}
        bar = QHBoxLayout()
        bar.setSpacing(6)
        for kind, title, _field in FILTERS:
            bar.addWidget(self._filter_button(kind, title))
        self.clear_filters_button = QPushButton("Clear filters")
        self.clear_filters_button.setFlat(True)
        bar.addWidget(self.clear_filters_button)
        bar.addStretch(1)
        saved_label = QLabel("Saved filters")
        saved_label.setProperty("role", "secondary")
        self.saved_combo = QComboBox()
        self.saved_combo.setMinimumWidth(160)
        self.save_filter_button = QPushButton("Save…")
        self.save_filter_button.setToolTip("Name the current search and filters to reuse them")
        self.delete_filter_button = QPushButton("Delete")
        for widget in (saved_label, self.saved_combo, self.save_filter_button,
                       self.delete_filter_button):
            bar.addWidget(widget)
        return bar

    def _filter_button(self, kind: str, title: str) -> QToolButton:
        button = QToolButton()
        button.setText(title)
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        button.setStyleSheet("QToolButton { padding: 3px 18px 3px 8px; }")
        menu = StickyMenu(button)
        menu.aboutToShow.connect(lambda k=kind: self._fill_filter_menu(k))
        button.setMenu(menu)
        self.filter_buttons[kind] = button
        self.filter_menus[kind] = menu
        return button

    def _build_table(self) -> QTableView:
        self.model = FleetTableModel(self)
        self.proxy = DeviceFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setObjectName("FleetTable")
        self.table.setModel(self.proxy)
        self.proxy.show_in(self.table)
        self.table.setSortingEnabled(True)
        configure_row_table(self.table, QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(False)
        hh.setHighlightSections(False)
        # ("environmental", "● warning" stay whole)
        whole: dict[int, int] = {Col.TYPE: cell_width(self.table, "environmental"),
                 Col.STATUS: max(cell_width(self.table, text) for text in STATUS_TEXTS)
                 + STATUS_DOT_PX}
        for col, width in COLUMN_WIDTHS.items():
            # Never narrower than the header text ("Active alerts") plus the
            # style's padding and the sort arrow, whatever the font.
            self.table.setColumnWidth(col, max(width, header_width(self.table, col),
                                               whole.get(col, 0)))
        hh.setSectionResizeMode(Col.NAME, QHeaderView.ResizeMode.Stretch)
        hh.setMinimumSectionSize(60)
        # in a narrow window the columns read least give way before the names do
        self.column_room = ColumnRoom(
            self.table, Col.NAME, NAME_MIN_PX,
            (Col.ORGANIZATION, Col.FIRMWARE, Col.LAST_SEEN, Col.TYPE, Col.STATUS), floors=whole)
        # right-click the header: the columns to show (a device's id and name always)
        self.columns = ColumnChooser(self.table, self._settings_dir, "devices",
                                     keep=(Col.DEVICE_ID, Col.NAME),
                                     changed=self._column_shown)
        self.table.sortByColumn(Col.DEVICE_ID, Qt.SortOrder.AscendingOrder)
        return self.table

    def _column_shown(self, col: int, shown: bool) -> None:
        if shown:
            self.column_room.restore(col)
        self.column_room.fit()

    def _build_empty_state(self) -> QWidget:
        """What stands in for the table when no row is shown, and why."""
        self.empty_label = QLabel(EMPTY_FLEET)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setProperty("role", "secondary")
        self.empty_label.setWordWrap(True)
        self.empty_clear_button = QPushButton("Clear search and filters")
        empty = QWidget()
        empty_layout = QVBoxLayout(empty)
        empty_layout.addStretch(1)
        empty_layout.addWidget(self.empty_label)
        empty_layout.addWidget(self.empty_clear_button, 0, Qt.AlignmentFlag.AlignHCenter)
        empty_layout.addStretch(2)
        return empty

    def _build_status_line(self) -> QLabel:
        self.status_label = QLabel("")
        self.status_label.setProperty("role", "secondary")
        self.status_label.setWordWrap(True)
        self.status_label.setVisible(False)
        return self.status_label

    def _build_splitter(self) -> QSplitter:
        self.table_stack = QStackedWidget()
        self.table_stack.addWidget(self._build_table())
        self.table_stack.addWidget(self._build_empty_state())
        self.detail = DeviceDetail()
        self.detail.setVisible(False)
        self.detail.live_requested.connect(self.open_live)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.table_stack)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        return self.splitter

    def _start_timers(self) -> None:
        self._search_timer = self._timer(200, self._apply_search, single=True)
        self._resort_timer = self._timer(2000, self._resort, single=True)
        self._sync_timer = self._timer(REGISTRY_SYNC_MS, self._sync_registry)
        self._sync_round = 0  # a newer re-read (or load) ends an older one's slices
        self._sync_timer.start()
        self._clock = self._timer(RELATIVE_TIME_REFRESH_MS, self._age_last_seen)
        self._clock.start()

    def _age_last_seen(self) -> None:
        """Repaint the "Last seen" column as the clock moves on, not the table.

        Only that column's text depends on the time; a whole repaint a second
        was the devices page's longest stall at 10,000 live devices (300 cells
        painted while the fleet's feed competes for the two cores).
        """
        column = int(Col.LAST_SEEN)
        if self.table.isColumnHidden(column):
            return
        viewport = self.table.viewport()
        x = self.table.columnViewportPosition(column)
        viewport.update(x, 0, self.table.columnWidth(column), viewport.height())

    def _timer(self, interval_ms: int, slot: Callable[[], Any], *,
               single: bool = False) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(single)
        timer.setInterval(interval_ms)
        timer.timeout.connect(slot)
        return timer

    def _connect(self) -> None:
        self.search.textChanged.connect(self._search_changed)
        self.refresh_button.clicked.connect(self.refresh)
        self.register_button.clicked.connect(self.open_register_dialog)
        self.export_button.clicked.connect(self._export_clicked)
        self.clear_filters_button.clicked.connect(self.clear_filters)
        self.empty_clear_button.clicked.connect(self.clear_filters)
        self.saved_combo.activated.connect(self._saved_activated)
        self.save_filter_button.clicked.connect(self._save_filter_clicked)
        self.delete_filter_button.clicked.connect(self._delete_filter_clicked)
        self.table.clicked.connect(lambda index: self.open_detail(index.row(), focus=False))
        self.table.activated.connect(lambda index: self.open_detail(index.row()))
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        self.detail.close_requested.connect(self.close_detail)
        self.detail.device_changed.connect(self._device_changed)
        for signal in (self.proxy.layoutChanged, self.proxy.rowsInserted,
                       self.proxy.rowsRemoved, self.proxy.modelReset):
            signal.connect(self._update_count)

    def _add_shortcuts(self) -> None:
        QShortcut(QKeySequence(QKeySequence.StandardKey.Find), self, self.focus_search)
        QShortcut(QKeySequence(Qt.Key.Key_F5), self, self.refresh)
        for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            enter = QShortcut(QKeySequence(key), self.table, self._enter_pressed)
            enter.setContext(Qt.ShortcutContext.WidgetShortcut)
        escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.close_detail)
        escape.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)

    # -- loading -------------------------------------------------------------------------
    def refresh(self) -> None:
        if self._loading:
            return
        self._background.cancel(FILL)  # F5 while filling: start over
        self._end_fill()
        self._loading = True
        self._sync_round += 1  # a re-read older than this load is not applied after it
        self.refresh_button.setEnabled(False)
        if self.model.rowCount():
            self._set_status("Loading devices…", "secondary")
        else:  # the empty page says it, once
            self._set_status("", "secondary")
            self._update_count()
        context, api, live = self._context, self.api, self._live

        def load() -> FleetLoad:
            source, feed = api, live
            if source is None and context is not None:
                # the context builds the backend on first use: here, off the GUI thread
                source, feed = context.api, context.backend.live
            if source is None:
                raise SmartIotError("no backend to load the devices from")
            first = source.devices.overview_page(limit=FILL_PAGE)
            return FleetLoad(source, feed, source.devices.capabilities(), first.overview,
                             first.next, first.total)

        self._background.start(load, self._loaded, self._failed, key=LOAD)

    def _loaded(self, result: FleetLoad) -> None:
        self._loading = False
        self._ever_loaded = True
        self.refresh_button.setEnabled(True)
        self._api_ready(result)
        selected = self.detail.device_id
        overview = result.overview
        self.model.load(overview.devices, overview.latest_values, overview.alert_counts,
                        overview.worst)
        self._set_status("", "secondary")
        self._update_count()
        if result.next:
            self._fill(result.next, result.total)
        if selected is not None:
            self._select_device(selected)
        if self._context is not None and not self._serves_device_target:
            # other plugins open a device here (navigation.open("device", id)) from now
            # on, a request made while the table was loading included
            self._serves_device_target = True
            unregister = self._context.navigation.register("device", self.show_device)
            self.destroyed.connect(lambda *_: unregister())

    def _fill(self, token: str, total: int | None) -> None:
        """The next page of the first load, off the GUI thread; rows are
        appended as each arrives, with the progress shown."""
        api = self.api
        if api is None:
            return
        self._filling = True
        shown = self.model.rowCount()
        bar = self.fill_progress
        if total:
            bar.setRange(0, max(total, shown))
            bar.setValue(shown)
        else:
            bar.setRange(0, 0)  # busy: the backend did not say how many
        bar.setVisible(True)
        of = f" of {total:,}" if total else ""
        self._set_status(f"Loading devices… {shown:,}{of}", "secondary")
        devices = api.devices
        self._background.start(
            lambda: devices.overview_page(limit=FILL_PAGE, next_token=token),
            lambda page: self._filled(page, total), self._fill_failed, key=FILL)

    def _filled(self, page: FleetOverviewPage, total: int | None) -> None:
        view = page.overview
        self.model.add_page(view.devices, view.latest_values, view.alert_counts, view.worst)
        if self.model.sort_column >= 0:
            self._resort_timer.start()  # rows arrive in id order
        self._update_count()
        if page.next:
            self._fill(page.next, total)
            return
        self._end_fill()
        self._set_status("", "secondary")

    def _fill_failed(self, exc: BaseException) -> None:
        self._end_fill()
        self._set_status(f"Showing the first {plural(self.model.rowCount(), 'device')}; "
                         f"could not load the rest: {exc}. Press F5 to try again.", "error")

    def _end_fill(self) -> None:
        self._filling = False
        self.fill_progress.setVisible(False)

    @property
    def filling(self) -> bool:
        """Pages of the first load are still arriving."""
        return self._filling

    def open_live(self, device_id: str) -> None:
        """Analytics > Live with this device chosen (the Analytics page serves "live")."""
        if self._context is None or not self._context.navigation.open("live", device_id):
            self.detail._show_message("No live chart in this console (Analytics is not "
                                      "installed)", "warning")

    def _failed(self, exc: BaseException) -> None:
        self._loading = False
        self.refresh_button.setEnabled(True)
        self._set_status(f"Could not load devices: {exc}", "error")
        self._update_count()

    def _api_ready(self, result: FleetLoad) -> None:
        self.api, self._live = result.api, result.live
        if self._focused_id is not None and self._unfocus is None and result.live is not None:
            self._unfocus = result.live.focus([self._focused_id])
        self.detail.bind(result.api.devices, self.actor, result.capabilities)
        if self.bridge is None and result.live is not None:
            # the table shows latest values; the detail's device gets every reading
            self.bridge = LiveBridge(result.live, interval_ms=self._bridge_interval_ms,
                                     newest_readings=True, parent=self)
            self.bridge.keep_all_readings([self._focused_id] if self._focused_id else [])
            self.bridge.batch.connect(self.apply_events)
        may_register = self.actor.can(Permission.DEVICE_REGISTER)
        self.register_button.setEnabled(may_register)
        if not may_register:
            self.register_button.setToolTip(self.actor.denial(Permission.DEVICE_REGISTER))

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        # Coming back to the list: catch up at once rather than at the next period.
        QTimer.singleShot(0, self._sync_registry)

    def _sync_registry(self) -> None:
        """Re-read the registry in the background while the list is shown."""
        api = self.api
        if api is None or self._loading or self._filling or not self.isVisible():
            return
        devices = api.devices

        def done(found: list[Device]) -> None:
            self._sync_timer.setInterval(registry_sync_ms(len(found)))
            self._sync_round += 1
            self._sync_slice(found, 0, self._sync_round)

        # a failed re-read is tried again next period; F5 reports errors
        self._background.start(devices.all, done, lambda _exc: None, key=SYNC)

    def _sync_slice(self, found: list[Device], start: int, round_no: int) -> None:
        """One ``SYNC_SLICE`` of a re-read into the table, the rest at the next
        turn of the event loop (paints and live batches go in between)."""
        if self._loading or round_no != self._sync_round:
            return
        end = start + SYNC_SLICE
        if self.model.sync_devices(found[start:end]):
            self._update_count()
        if end < len(found):
            QTimer.singleShot(0, lambda: self._sync_slice(found, end, round_no))

    # -- live ----------------------------------------------------------------------------
    def apply_events(self, events: list[FleetEvent]) -> None:
        """A LiveBridge batch: rows change in place, new devices are appended."""
        before = self.model.rowCount()
        self.model.apply_events(events)
        if self.model.rowCount() != before and self.model.sort_column >= 0:
            self._resort_timer.start()
        alerted = {e.device_id for e in events if isinstance(e, AlertChanged) and e.device_id}
        if any(isinstance(e, DataChanged) and e.topic == "alerts"
               for e in events):  # changed elsewhere (CLI, another console): all health
            alerted |= {row.device.device_id for row in self.model.rows()}
        if alerted:
            self._alert_recount |= alerted
            self._start_alert_recount()
        if self.detail.isVisible() or self.detail.device_id is not None:
            self.detail.apply_events(events)
        self._update_count()

    def _start_alert_recount(self) -> None:
        """Recount the open alerts of the devices named since the last count,
        one count at a time: under a stream of alert events each count still
        finishes and paints, and the next one covers what arrived meanwhile."""
        api = self.api
        if self._alert_job_running or not self._alert_recount or api is None:
            return
        ids, self._alert_recount = sorted(self._alert_recount), set()
        self._alert_job_running = True
        devices = api.devices

        def done(summary: OpenAlertSummary) -> None:
            self._alert_job_running = False
            self.model.set_alert_counts(summary.counts, summary.worst)  # counts and health
            self._start_alert_recount()

        def failed(exc: BaseException) -> None:
            self._alert_job_running = False
            self._set_status(f"Could not update alert counts: {exc}", "error")

        self._background.start(lambda: devices.open_alerts(ids), done, failed)

    def _resort(self) -> None:
        self.model.sort(self.model.sort_column, self.model.sort_order)

    # -- search and filters --------------------------------------------------------------
    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def _search_changed(self, _text: str) -> None:
        if self.model.rowCount() > LIVE_SEARCH_LIMIT:
            self._search_timer.start()
        else:
            self._apply_search()

    def _apply_search(self) -> None:
        self._search_timer.stop()
        self.proxy.set_text(self.search.text())
        self._update_filter_buttons()
        self._update_count()

    def filter_state(self) -> FilterState:
        state = self.proxy.state
        state.text = self.search.text()
        return state

    def set_filter_state(self, state: FilterState) -> None:
        self._search_timer.stop()
        self.search.blockSignals(True)
        self.search.setText(state.text)
        self.search.blockSignals(False)
        self.proxy.set_state(state)
        self._update_filter_buttons()
        self._update_count()

    def set_filter(self, kind: str, values: set[str]) -> None:
        """Set one filter list (status, type, tag, organization, firmware)."""
        field_name = dict((k, f) for k, _t, f in FILTERS)[kind]
        state = self.filter_state()
        setattr(state, field_name, set(values))
        self.set_filter_state(state)

    def clear_filters(self) -> None:
        self.set_filter_state(FilterState())
        self.saved_combo.setCurrentIndex(0)

    def filter_options(self, kind: str) -> list[str]:
        return self.model.distinct(kind)

    def _fill_filter_menu(self, kind: str) -> None:
        menu = self.filter_menus[kind]
        menu.clear()
        field_name = dict((k, f) for k, _t, f in FILTERS)[kind]
        chosen: set[str] = getattr(self.proxy.state, field_name)
        options = self.filter_options(kind)
        for value in sorted(chosen - set(options)):
            options.append(value)  # keep a chosen value visible even if no device has it now
        if not options:
            none = menu.addAction("No values yet")
            none.setEnabled(False)
            return
        for value in options:
            action = QAction(value or "(none)", menu)
            action.setCheckable(True)
            action.setChecked(value in chosen)
            action.toggled.connect(lambda on, v=value: self._toggle(kind, v, on))
            menu.addAction(action)
        menu.addSeparator()
        clear = menu.addAction("Clear")
        clear.triggered.connect(lambda: self.set_filter(kind, set()))

    def _toggle(self, kind: str, value: str, on: bool) -> None:
        field_name = dict((k, f) for k, _t, f in FILTERS)[kind]
        values = set(getattr(self.proxy.state, field_name))
        if on:
            values.add(value)
        else:
            values.discard(value)
        self.set_filter(kind, values)

    def _update_filter_buttons(self) -> None:
        state = self.proxy.state
        for kind, title, field_name in FILTERS:
            chosen = getattr(state, field_name)
            button = self.filter_buttons[kind]
            if not chosen:
                button.setText(title)
                button.setToolTip(f"Show only devices with these {title.lower()} values")
            elif len(chosen) == 1:
                button.setText(f"{title}: {next(iter(chosen)) or '(none)'}")
                button.setToolTip("")
            else:
                button.setText(f"{title}: {len(chosen)}")
                button.setToolTip(", ".join(sorted(chosen)))
            button.setProperty("accent", bool(chosen))
            button.style().unpolish(button)
            button.style().polish(button)
        self.clear_filters_button.setEnabled(not self.filter_state().is_empty())

    # -- saved filters ------------------------------------------------------------------
    def save_filter(self, name: str) -> None:
        self.saved_filters.save(name, self.filter_state().to_dict())
        self._reload_saved_names(select=name.strip())

    def apply_saved_filter(self, name: str) -> None:
        raw = self.saved_filters.get(name)
        if raw is None:
            self._set_status(f"No saved filter named {name!r}", "error")
            return
        self.set_filter_state(FilterState.from_dict(raw))
        self.saved_combo.setCurrentText(name)

    def delete_saved_filter(self, name: str) -> None:
        self.saved_filters.delete(name)
        self._reload_saved_names()

    def _reload_saved_names(self, select: str = "") -> None:
        self.saved_combo.blockSignals(True)
        self.saved_combo.clear()
        names = self.saved_filters.names()
        self.saved_combo.addItem("—" if names else "none saved")
        self.saved_combo.addItems(names)
        if select in names:
            self.saved_combo.setCurrentIndex(names.index(select) + 1)
        self.saved_combo.blockSignals(False)
        self.delete_filter_button.setEnabled(bool(names))

    def _saved_activated(self, index: int) -> None:
        if index > 0:
            self.apply_saved_filter(self.saved_combo.itemText(index))

    def _save_filter_clicked(self) -> None:
        current = self.saved_combo.currentText() if self.saved_combo.currentIndex() > 0 else ""
        name, ok = QInputDialog.getText(self, "Save filter", "Name for the current filters:",
                                        text=current)
        if ok and name.strip():
            self.save_filter(name)

    def _delete_filter_clicked(self) -> None:
        if self.saved_combo.currentIndex() > 0:
            self.delete_saved_filter(self.saved_combo.currentText())

    # -- export --------------------------------------------------------------------------
    def export_csv(self, path: Path) -> int:
        return export_view_csv(self.model, self.proxy, Path(path))

    def _export_clicked(self) -> None:
        path, _filter = QFileDialog.getSaveFileName(
            self, "Export devices", str(Path.home() / "devices.csv"), "CSV files (*.csv)")
        if not path:
            return
        header = [HEADERS[c] for c in Col]
        rows = [[self.model.export_value(src, c) for c in Col]
                for src in self.proxy.visible_rows()]
        self._set_status("Exporting…", "secondary")
        self._background.start(
            lambda: write_csv(Path(path), header, rows),
            lambda n: self._set_status(f"Exported {plural(n, 'device')} to {path}", "success"),
            lambda exc: self._set_status(f"Export failed: {exc}", "error"))

    # -- detail --------------------------------------------------------------------------
    def open_detail(self, proxy_row: int | None = None, *, focus: bool = True) -> None:
        if proxy_row is None:
            proxy_row = self.table.currentIndex().row()
        if proxy_row < 0 or proxy_row >= self.proxy.rowCount():
            return
        device = self.proxy.device(proxy_row)
        if not self.detail.isVisible():
            self.detail.setVisible(True)
            total = max(self.splitter.width(), 900)
            self.splitter.setSizes([total * 55 // 100, total * 45 // 100])
        if self.detail.device_id != device.device_id:
            self.detail.show_device(device.device_id, device)
        self._focus_live(device.device_id)
        if focus:
            self.detail.tabs.setFocus()

    def close_detail(self) -> None:
        if self.detail.isVisible():
            self.detail.setVisible(False)
            self.table.setFocus()
        self._focus_live(None)

    def _focus_live(self, device_id: str | None) -> None:
        """Every reading of the device in the detail (LiveFeed.focus): with
        thousands of devices a feed may pass on only the table's columns."""
        if device_id == self._focused_id:
            return
        if self._unfocus is not None:
            self._unfocus()
            self._unfocus = None
        self._focused_id = device_id
        if self.bridge is not None:
            self.bridge.keep_all_readings([device_id] if device_id is not None else [])
        if device_id is not None and self._live is not None:
            self._unfocus = self._live.focus([device_id])

    def show_device(self, device_id: str) -> bool:
        """Select ``device_id`` in the table and open its detail (False if not shown)."""
        if not self._select_device(device_id):
            return False
        self.open_detail(self.table.currentIndex().row())
        return True

    def _select_device(self, device_id: str) -> bool:
        source_row = self.model.row_of(device_id)
        if source_row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(source_row, 0))
        if not index.isValid():
            return False
        self.table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)
        return True

    def _enter_pressed(self) -> None:
        self.open_detail()

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self.detail.isVisible() and current.isValid():
            self.open_detail(current.row(), focus=False)

    def _device_changed(self, device: Device) -> None:
        self.model.upsert_devices([device])
        self._update_count()

    # -- register ------------------------------------------------------------------------
    def open_register_dialog(self) -> RegisterDeviceDialog | None:
        dialog = RegisterDeviceDialog(self.model.distinct("type"),
                                      self.model.distinct("organization"), self)
        dialog.accepted.connect(lambda: self.register_device(dialog.device()))
        dialog.open()
        return dialog

    def register_device(self, device: Device,
                        on_done: Callable[[Device], Any] | None = None) -> None:
        api = self.api
        if api is None:
            self._set_status("The backend is not ready yet; try again in a moment", "error")
            return
        devices = api.devices

        def done(registered: Device) -> None:
            self.model.upsert_devices([registered])
            self._set_status(f"Registered {registered.device_id}", "success")
            self._update_count()
            self.show_device(registered.device_id)
            if on_done is not None:
                on_done(registered)

        self._background.start(
            lambda: devices.register(device), done,
            lambda exc: self._set_status(f"Could not register {device.device_id}: {exc}",
                                         "error"))

    # -- state ---------------------------------------------------------------------------
    def _set_status(self, text: str, role: str) -> None:
        self.status_label.setText(text)
        self.status_label.setProperty("role", role)
        self.status_label.style().unpolish(self.status_label)
        self.status_label.style().polish(self.status_label)
        self.status_label.setVisible(bool(text))

    def _update_count(self, *_args: Any) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.count_label.setText(f"{shown:,} of {total:,}")
        if shown == 0 and total == 0 and (self._loading or not self._ever_loaded):
            self.empty_label.setText(EMPTY_LOADING if self._loading else EMPTY_UNLOADED)
            self.empty_clear_button.setVisible(False)
            self.table_stack.setCurrentIndex(1)
        elif shown == 0 and not self._loading:
            self.empty_label.setText(EMPTY_MATCH if total else EMPTY_FLEET)
            self.empty_clear_button.setVisible(bool(total))
            self.table_stack.setCurrentIndex(1)
        else:
            self.table_stack.setCurrentIndex(0)

    def closeEvent(self, event: Any) -> None:
        if self.bridge is not None:
            self.bridge.close()
        super().closeEvent(event)


def build_devices_page(context: AppContext) -> DevicesPage:
    return DevicesPage(context)
