"""Deployments: the list (status and progress of each), the wizard for a new
one, and the monitor of the selected one below the list."""

from __future__ import annotations

from PySide6.QtCore import QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
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
from core.model import Deployment
from core.model.roles import Permission
from core.ports import changes
from core.text import plural
from plugins.firmware.widgets.common import (
    error_text,
    guard,
    roles_for,
    select_source_row,
    selected_source_row,
    show_message,
)
from plugins.firmware.widgets.models import SORT_ROLE, DeploymentListModel, DeploymentRow
from plugins.firmware.widgets.monitor import DeploymentMonitor
from plugins.firmware.widgets.wizard import DeploymentWizard

LIST_POLL_MS = 3000
LIST_WIDTHS = (130, 150, 120, 140, 120, 90, 140)  # the last column (Note) stretches


class DeploymentsTab(QWidget):
    loaded = Signal()
    wizard_closed = Signal()

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.device_types: list[str] = []
        self.wizard: DeploymentWizard | None = None
        self._background = BackgroundCall(self)
        self._select_after_load: str | None = None

        title = QLabel("Deployments")
        title.setProperty("role", "title")
        self.count_label = QLabel()
        self.count_label.setProperty("role", "secondary")
        self.new_button = QPushButton("New deployment…")
        self.new_button.setProperty("accent", True)
        guard(self.new_button, context.actor, Permission.DEPLOYMENT_CREATE,
              tooltip="Roll firmware out to devices (Ctrl+N)")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Reload the list and the selected deployment (F5)")
        top = QHBoxLayout()
        top.addWidget(title)
        top.addWidget(self.count_label)
        top.addStretch(1)
        top.addWidget(self.new_button)
        top.addWidget(self.refresh_button)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setVisible(False)

        self.model = DeploymentListModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        configure_row_table(self.table, QTableView.SelectionMode.SingleSelection)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # newest first, as listed
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        for col, width in enumerate(LIST_WIDTHS):
            self.table.setColumnWidth(col, width)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.monitor = DeploymentMonitor(context)

        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(self.table)
        body.addWidget(self.monitor)
        body.setStretchFactor(0, 1)
        body.setStretchFactor(1, 4)
        body.setSizes([150, 600])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.addLayout(top)
        self.role_note = RoleNote(context.actor, [
            ("New deployment…", Permission.DEPLOYMENT_CREATE),
            ("Pause, Resume, Retry failed", Permission.DEPLOYMENT_CONTROL),
            ("Cancel…", Permission.DEPLOYMENT_CANCEL)])
        layout.addWidget(self.role_note)
        layout.addWidget(self.status)
        layout.addWidget(body, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(LIST_POLL_MS)
        self._timer.timeout.connect(self._poll)
        self._timer.start()
        self.new_button.clicked.connect(self.new_deployment)
        self.refresh_button.clicked.connect(self.refresh)
        self.table.selectionModel().selectionChanged.connect(self._selected)
        self.monitor.action_finished.connect(lambda _what: self.load())
        self.monitor.updated.connect(self._monitor_updated)
        self.load()
        # created, paused or cancelled elsewhere (the CLI, another console, the hub)
        watch_changes(self, {changes.DEPLOYMENTS}, lambda _topics: self.refresh(),
                      context=context)

    # ------------------------------------------------------------ list
    def refresh(self) -> None:
        self.load()
        self.monitor.poll()

    def _poll(self) -> None:
        if self.isVisible():
            self.load()

    def load(self) -> None:
        # Reloads never overlap: on a slow database a poll waits for the one
        # running instead of superseding it before it could ever be shown.
        if self._background.is_running("list"):
            return

        def fetch() -> list[DeploymentRow]:
            return [DeploymentRow(p.deployment, p.counts)
                    for p in self.context.api.deployments.list()]

        self._background.start(fetch, self._loaded, self._failed, key="list")

    def _loaded(self, rows: list[DeploymentRow]) -> None:
        if not rows:
            show_message(self.status, "No deployments yet: New deployment… (Ctrl+N) rolls "
                         "firmware out.", "secondary")
        elif self.status.property("role") != "success":
            show_message(self.status, "")
        self.model.set_rows(rows)
        self.fit_columns()
        self.count_label.setText(plural(len(rows), "deployment"))
        wanted = self._select_after_load
        if wanted and self.select(wanted):
            self._select_after_load = None
        elif self.monitor.deployment_id is None and rows:
            self.select(rows[0].deployment.deployment_id)
        safe_emit(self.loaded)

    def _monitor_updated(self) -> None:
        """The monitor polls its deployment every second, the list every few:
        its fresher reading replaces the row so both show one state."""
        snap = self.monitor.snapshot
        if snap is not None:
            self.model.update_row(DeploymentRow(snap.deployment, snap.counts))
            self.fit_columns()

    def fit_columns(self) -> None:
        """Each column at least as wide as its widest text, re-checked as texts
        grow: "0 of 2 updated · 2 to go" becomes "0 of 2 updated · 1 failed ·
        1 to go" long after the row first appeared, and a width fixed then cut
        it. Columns only grow (a person may have widened one); the Note column
        takes the rest and elides, its full text in the tooltip."""
        header = self.table.horizontalHeader()
        for col, width in enumerate(LIST_WIDTHS):
            wanted = max(width, self.table.sizeHintForColumn(col),
                         header.sectionSizeHint(col))
            if wanted > self.table.columnWidth(col):
                self.table.setColumnWidth(col, wanted)

    def _failed(self, exc: BaseException) -> None:
        show_message(self.status, f"Could not load deployments: {error_text(exc)}")

    def select(self, deployment_id: str) -> bool:
        return select_source_row(self.table, self.proxy, self.model.row_of(deployment_id))

    def _selected(self, *_args: object) -> None:
        row = selected_source_row(self.table, self.proxy)
        if row is not None:
            self.monitor.show_deployment(self.model.row(row).deployment.deployment_id)

    # ------------------------------------------------------------ wizard
    def new_deployment(self) -> None:
        actor = self.context.actor
        if not actor.can(Permission.DEPLOYMENT_CREATE):
            show_message(self.status, f"Not allowed: {actor.role.value}s may not create "
                         f"deployments; that needs the role "
                         f"{roles_for(Permission.DEPLOYMENT_CREATE)}.")
            return
        if self.wizard is not None:
            self.wizard.deleteLater()  # one wizard at a time, not one per deployment
        wizard = DeploymentWizard(self.context, self.device_types, self)
        wizard.created.connect(self._created)
        wizard.finished.connect(lambda _code: safe_emit(self.wizard_closed))
        self.wizard = wizard
        wizard.open()

    def _created(self, deployment: Deployment) -> None:
        self._select_after_load = deployment.deployment_id
        show_message(self.status, f"Created {deployment.deployment_id}: "
                     f"{deployment.firmware_id} to {plural(len(deployment.targets), 'device')}.",
                     "success")
        self.load()
