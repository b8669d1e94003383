"""The Audit page: who did what (filterable), an export, and "Verify chain".

Every query runs through the audit use cases (``context.api.audit``: the
role check, and verifications and exports written to the trail), on a worker
thread; a role without ``audit.read`` sees why instead of a table.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from console.widgets.background import BackgroundCall
from console.widgets.status_line import StatusLine
from console.widgets.tables import Column, ColumnTableModel, configure_row_table
from core.context import AppContext
from core.errors import PermissionDenied
from core.model.roles import Permission
from core.ports.audit import AuditEntry, AuditFilter, AuditReport
from core.ports.fleet_api import AuditApi
from core.services.audit import AuditExport
from plugins.audit.service import parse_since

SHOWN = 2000  # newest entries shown; the export has them all
TARGET_PADDING_PX = 24  # the cell's padding and the elision's slack
DENIED_RED = "#dc2626"


def _who(e: AuditEntry) -> str:
    claimed = e.details.get("claimed_user", "")
    return e.actor + (f" (claimed {claimed})" if claimed else "")


def _details(e: AuditEntry) -> str:
    hidden = ("role", "outcome", "organization", "claimed_user")
    return ", ".join(f"{k}={v}" for k, v in sorted(e.details.items()) if k not in hidden)


class AuditModel(ColumnTableModel[AuditEntry]):
    """Audit entries, newest first; denied attempts and the entry "Verify
    chain" found broken are red on every column."""

    def __init__(self) -> None:
        def column(title: str, value: Callable[[AuditEntry], str]) -> Column[AuditEntry]:
            return Column(title, value, foreground=self._colour,
                          tooltip=lambda e: f"{value(e)}\n\nhash {e.hash}\nprevious {e.prev_hash}")

        super().__init__((
            column("#", lambda e: str(e.seq)),
            column("Time", lambda e: f"{e.ts.astimezone():%Y-%m-%d %H:%M:%S}"),
            column("Who", _who),
            column("Role", lambda e: str(e.details.get("role", ""))),
            column("Action", lambda e: e.action),
            column("Target", lambda e: e.subject),
            column("Outcome", lambda e: "denied" if e.details.get("outcome") == "denied"
                   else "done"),
            column("Details", _details),
        ), key=lambda e: e.seq)
        self._bad_seq: int | None = None

    @property
    def bad_seq(self) -> int | None:
        return self._bad_seq

    @bad_seq.setter
    def bad_seq(self, seq: int | None) -> None:
        rows = [self.row_of(s) for s in (self._bad_seq, seq) if s is not None]
        self._bad_seq = seq
        self.rows_changed(r for r in rows if r is not None)

    def set_entries(self, entries: list[AuditEntry]) -> None:
        self.set_rows(entries)

    def _colour(self, e: AuditEntry) -> str | None:
        denied = e.details.get("outcome") == "denied"
        return DENIED_RED if denied or e.seq == self._bad_seq else None


COLUMNS = tuple(c.title for c in AuditModel().columns)


class AuditPage(QWidget):
    """``loaded(count)``, ``verified(report)`` and ``exported(path)`` let tests
    and other views wait for results instead of timing them."""

    loaded = Signal(int)
    verified = Signal(object)
    exported = Signal(str)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AuditPage")
        self.context = context
        self.actor = context.actor
        self._background = BackgroundCall(self)

        title = QLabel("Audit trail")
        title.setProperty("role", "title")
        self.verify_button = QPushButton("Verify chain")
        self.verify_button.setToolTip("Check every entry's hash and the signed checkpoints")
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the entries shown by the filters as CSV or JSON, "
                                      "with the head hash")
        self.refresh_button = QPushButton("Refresh")
        top = QHBoxLayout()
        top.addWidget(title)
        top.addStretch(1)
        for button in (self.refresh_button, self.verify_button, self.export_button):
            top.addWidget(button)

        self.actor_filter = QLineEdit()
        self.actor_filter.setPlaceholderText("Who")
        self.action_filter = QLineEdit()
        self.action_filter.setPlaceholderText("Action (alert.acknowledge, or alert.)")
        self.target_filter = QLineEdit()
        self.target_filter.setPlaceholderText("Target contains")
        self.since_filter = QLineEdit()
        self.since_filter.setPlaceholderText("Since (2h, 7d, 2026-12-01)")
        self.denied_only = QCheckBox("Refused only")
        filters = QHBoxLayout()
        for widget in (self.actor_filter, self.action_filter, self.target_filter,
                       self.since_filter):
            filters.addWidget(widget, 1)
            widget.returnPressed.connect(self.reload)
        filters.addWidget(self.denied_only)
        self.denied_only.toggled.connect(self.reload)

        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.result_label.setObjectName("AuditVerifyResult")
        self.status = StatusLine()

        self.model = AuditModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        configure_row_table(self.table)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        # Target holds alert ids (32 hex digits): sized for one whole, taken from
        # Who, which held "root" in 190 pixels while the id was cut in half.
        self.table.ensurePolished()
        target = self.table.fontMetrics().horizontalAdvance("0" * 32) + TARGET_PADDING_PX
        for column, width in enumerate((56, 170, 130, 90, 170, max(170, target), 80)):
            self.table.setColumnWidth(column, width)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(filters)
        layout.addWidget(self.result_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)

        self.refresh_button.clicked.connect(self.reload)
        self.verify_button.clicked.connect(self.verify)
        self.export_button.clicked.connect(self.choose_export)
        allowed = self.actor.can(Permission.AUDIT_READ)
        for button in (self.verify_button, self.export_button, self.refresh_button):
            button.setEnabled(allowed)
        if allowed:
            self.reload()
        else:
            self.status.failed(f"{self.actor.user} ({self.actor.role.value}) may not "
                               f"{Permission.AUDIT_READ.action}; engineers and admins may",
                               doing="")

    # -- queries ------------------------------------------------------------------------
    def service(self) -> AuditApi:
        """The person's audit use cases (builds the backend on first use: call
        it on a worker thread)."""
        return self.context.api.audit

    def query(self, *, limit: int | None = SHOWN) -> AuditFilter:
        """Raises ValueError naming the field when a filter cannot be read."""
        since = None
        if self.since_filter.text().strip():
            try:
                since = parse_since(self.since_filter.text())
            except ValueError as exc:
                raise ValueError(f"Since: {exc}") from None
        return AuditFilter(actor=self.actor_filter.text().strip(),
                           action=self.action_filter.text().strip(),
                           subject=self.target_filter.text().strip(), since=since,
                           outcome="denied" if self.denied_only.isChecked() else "",
                           limit=limit, newest_first=limit is not None)

    def reload(self) -> None:
        try:
            query = self.query()
        except ValueError as exc:
            self.status.failed(exc, doing="")
            return
        self.status.loading()
        # Latest wins: an older query answering late is dropped.
        self._background.start(lambda: self.service().list(query), self._loaded,
                               self.status.failed, key="entries")

    def _loaded(self, entries: list[AuditEntry]) -> None:
        entries = sorted(entries, key=lambda e: e.seq, reverse=True)
        self.model.set_entries(entries)
        more = " (the newest; export for all)" if len(entries) >= SHOWN else ""
        self.status.updated(f"{len(entries)} entries{more}")
        self.loaded.emit(len(entries))

    def verify(self) -> None:
        self.verify_button.setEnabled(False)
        self._say(self.result_label, "Verifying…", "secondary")

        def done(report: AuditReport) -> None:
            self.verify_button.setEnabled(True)
            # highlight only an entry that exists: a missing one has no row, and its
            # seq may be reused by the next entry (this check, for one)
            bad = report.first_bad_seq
            self.model.bad_seq = bad if bad is not None and bad <= report.head_seq else None
            if report.ok and report.signatures_checked:
                self._say(self.result_label, "✓ " + report.summary(), "success")
            elif report.ok:
                self._say(self.result_label, "⚠ " + report.summary(), "warning")
            else:
                lines = "\n".join(report.problems)
                self._say(self.result_label, f"✗ Audit trail NOT intact — first bad entry "
                          f"#{report.first_bad_seq}\n{lines}", "error")
            self.verified.emit(report)
            self.reload()  # the check itself is an entry now

        def failed(exc: BaseException) -> None:
            self.verify_button.setEnabled(True)
            self._say(self.result_label, f"Could not verify: {exc}", "error")

        self._background.start(lambda: self.service().verify(), done, failed)

    def choose_export(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export audit trail", str(Path.home() / "audit.csv"),
            "CSV (*.csv);;JSON (*.json)")
        if path:
            self.export_to(Path(path), "json" if chosen.startswith("JSON")
                           or path.endswith(".json") else "csv")

    def export_to(self, path: Path, fmt: str) -> None:
        try:
            query = self.query(limit=None)
        except ValueError as exc:
            self.status.failed(exc, doing="")
            return

        def run() -> AuditExport:
            exported = self.service().export(fmt, query)
            path.write_text(exported.text, encoding="utf-8")
            return exported

        def done(exported: AuditExport) -> None:
            self._say(self.result_label, f"Exported {exported.entries} entries to {path} "
                      f"(head #{exported.head_seq} {exported.head_hash[:16]}…)", "success")
            self.exported.emit(str(path))
            self.reload()

        def failed(exc: BaseException) -> None:
            why = "Not allowed" if isinstance(exc, PermissionDenied) else "Could not export"
            self._say(self.result_label, f"{why}: {exc}", "error")

        self._background.start(run, done, failed)

    @staticmethod
    def _say(label: QLabel, text: str, role: str) -> None:
        label.setText(text)
        label.setProperty("role", role)
        label.style().unpolish(label)
        label.style().polish(label)


def build_audit_page(context: AppContext) -> AuditPage:
    return AuditPage(context)
