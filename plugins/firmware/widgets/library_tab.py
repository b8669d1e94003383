"""The firmware library: images with their signature checked in the background,
details of the selected one, and which versions the fleet runs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from console.changes import watch_changes
from console.widgets.background import BackgroundCall
from console.widgets.role_note import RoleNote
from console.widgets.signals import safe_emit
from console.widgets.tables import configure_row_table
from core.context import AppContext
from core.model import Firmware
from core.model.roles import Permission
from core.ports import changes
from core.text import plural
from plugins.firmware.widgets.common import (
    check_signatures,
    error_text,
    fmt_size,
    guard,
    roles_for,
    select_source_row,
    selected_source_row,
    show_message,
)
from plugins.firmware.widgets.import_dialog import ImportDialog
from plugins.firmware.widgets.models import SORT_ROLE, FirmwareTableModel
from plugins.firmware.widgets.version_chart import VersionChart


@dataclass(frozen=True)
class LibrarySnapshot:
    images: list[Firmware]
    distribution: dict[str, Counter[str]]


class LibraryTab(QWidget):
    loaded = Signal()
    verified = Signal()

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._background = BackgroundCall(self)
        self.import_dialog: ImportDialog | None = None
        self.device_types: list[str] = []
        self._select_after_load: str | None = None

        title = QLabel("Firmware library")
        title.setProperty("role", "title")
        self.count_label = QLabel()
        self.count_label.setProperty("role", "secondary")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter images")
        self.search.setClearButtonEnabled(True)
        self.import_button = QPushButton("Import…")
        self.import_button.setProperty("accent", True)
        guard(self.import_button, context.actor, Permission.FIRMWARE_IMPORT,
              tooltip="Import and sign a firmware image (Ctrl+I)")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Reload the library and check every signature (F5)")
        top = QHBoxLayout()
        top.addWidget(title)
        top.addWidget(self.count_label)
        top.addStretch(1)
        top.addWidget(self.search, 1)
        top.addWidget(self.import_button)
        top.addWidget(self.refresh_button)

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setVisible(False)

        self.model = FirmwareTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        configure_row_table(self.table, QTableView.SelectionMode.SingleSelection)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # then newest version first
        self.table.horizontalHeader().setStretchLastSection(True)

        self.details = QLabel("Select an image to see its details.")
        self.details.setWordWrap(True)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setMinimumWidth(260)
        self.chart = VersionChart()

        upper = QSplitter(Qt.Orientation.Horizontal)
        upper.addWidget(self.table)
        upper.addWidget(self.details)
        upper.setStretchFactor(0, 3)
        upper.setStretchFactor(1, 1)
        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(upper)
        body.addWidget(self.chart)
        body.setStretchFactor(0, 3)
        body.setStretchFactor(1, 2)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.addLayout(top)
        self.role_note = RoleNote(context.actor, [("Import…", Permission.FIRMWARE_IMPORT)])
        layout.addWidget(self.role_note)
        layout.addWidget(self.status)
        layout.addWidget(body, 1)

        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.import_button.clicked.connect(self.open_import)
        self.refresh_button.clicked.connect(self.refresh)
        self.table.selectionModel().selectionChanged.connect(self._show_details)
        self.refresh()
        # images added or removed elsewhere (the CLI, another console) show up
        watch_changes(self, {changes.FIRMWARE}, lambda _topics: self.refresh(), context=context)

    # ------------------------------------------------------------ loading
    def refresh(self) -> None:
        self.refresh_button.setEnabled(False)

        def load() -> LibrarySnapshot:
            library = self.context.api.firmware
            return LibrarySnapshot(library.list(), library.version_distribution())

        self._background.start(load, self._loaded, self._failed, key="library")

    def _loaded(self, snapshot: LibrarySnapshot) -> None:
        self.refresh_button.setEnabled(True)
        show_message(self.status, "" if snapshot.images else
                     "No firmware images yet: Import… (Ctrl+I) adds and signs one.",
                     "secondary")
        selected = self._select_after_load or self.selected_id()
        self._select_after_load = None
        self.model.set_firmware(snapshot.images)
        self.table.resizeColumnsToContents()
        self.count_label.setText(plural(len(snapshot.images), "image"))
        types = set(snapshot.distribution) | {f.device_type for f in snapshot.images}
        self.device_types = sorted(types)
        self.chart.set_distribution(snapshot.distribution)
        if selected:
            self.select(selected)
        safe_emit(self.loaded)
        self._verify([f.firmware_id for f in snapshot.images if f.is_signed])

    def _failed(self, exc: BaseException) -> None:
        self.refresh_button.setEnabled(True)
        show_message(self.status, f"Could not load the library: {error_text(exc)}")

    def _verify(self, firmware_ids: list[str]) -> None:
        """Re-check every stored image against its SHA-256 and signature."""
        if not firmware_ids:
            return

        def done(results: dict[str, tuple[bool, str]]) -> None:
            self.model.set_signatures(results)
            self._show_details()
            safe_emit(self.verified)

        self._background.start(lambda: check_signatures(self.context, firmware_ids), done,
                               self._failed, key="verify")  # the newest library's check wins

    # ------------------------------------------------------------ selection
    def selected_id(self) -> str | None:
        row = selected_source_row(self.table, self.proxy)
        return None if row is None else self.model.firmware(row).firmware_id

    def select(self, firmware_id: str) -> bool:
        return select_source_row(self.table, self.proxy, self.model.row_of(firmware_id))

    def _show_details(self, *_args: object) -> None:
        firmware_id = self.selected_id()
        row = self.model.row_of(firmware_id) if firmware_id else None
        if row is None:
            self.details.setText("Select an image to see its details.")
            return
        f = self.model.firmware(row)
        signature = self.model.signature_text(f)
        result = self.model.signature(f.firmware_id)
        notes = (f.release_notes or "no release notes").replace("&", "&amp;").replace("<", "&lt;")
        self.details.setText(
            f"<b>{f.device_type} {f.version}</b><br>"
            f"{fmt_size(f.size)} · added {f.created_at.astimezone():%Y-%m-%d %H:%M}<br>"
            f"SHA-256 <code>{f.sha256[:32]}…</code><br>"
            f"Signature: <b>{signature}</b>"
            + (f" — {result[1]}" if result else "")
            + f"<br><br>{notes.replace(chr(10), '<br>')}"
        )

    # ------------------------------------------------------------ import
    def open_import(self) -> None:
        actor = self.context.actor
        if not actor.can(Permission.FIRMWARE_IMPORT):
            show_message(self.status, f"Not allowed: {actor.role.value}s may not import "
                         f"firmware; that needs the role {roles_for(Permission.FIRMWARE_IMPORT)}.")
            return
        if self.import_dialog is not None:
            self.import_dialog.deleteLater()  # one dialog at a time, not one per import
        dialog = ImportDialog(self.context, self.device_types, self)
        dialog.imported.connect(self._imported)
        self.import_dialog = dialog
        dialog.open()

    def _imported(self, firmware: Firmware) -> None:
        self._select_after_load = firmware.firmware_id
        self.refresh()
