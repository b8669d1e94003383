"""A page that lists records: search box, refresh (F5), count, empty and error states.

The loader runs in the background; its error is shown on the page in words
rather than as a dialog, because a page that cannot reach its backend should
still let people use the rest of the console.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from console.widgets.background import BackgroundCall
from console.widgets.record_table import Column, RecordTableModel
from console.widgets.tables import configure_row_table

# Sizing columns to contents reads every row; past this many it costs more than it helps.
AUTO_SIZE_LIMIT = 5000


class RecordPage(QWidget):
    def __init__(
        self,
        title: str,
        columns: Sequence[Column],
        loader: Callable[[], Sequence[Any]],
        *,
        empty_text: str,
        sort_column: int = 0,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._loader = loader
        self._empty_text = empty_text
        self._background = BackgroundCall(self)

        self.heading = QLabel(title)
        self.heading.setProperty("role", "title")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Reload from the backend (F5)")
        self.count_label = QLabel("")
        self.status_label = QLabel("")
        self.status_label.setProperty("role", "secondary")
        self.status_label.setWordWrap(True)

        self.model = RecordTableModel(columns)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setSortRole(RecordTableModel.SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        configure_row_table(self.table)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.sortByColumn(sort_column, Qt.SortOrder.AscendingOrder)

        top = QHBoxLayout()
        top.addWidget(self.heading)
        top.addStretch(1)
        top.addWidget(self.count_label)
        top.addWidget(self.search, 1)
        top.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.addLayout(top)
        layout.addWidget(self.status_label)
        layout.addWidget(self.table, 1)

        self.search.textChanged.connect(self._apply_filter)
        self.refresh_button.clicked.connect(self.refresh)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Refresh), self, self.refresh)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Find), self, self.search.setFocus)
        self.refresh()

    def refresh(self) -> None:
        self.refresh_button.setEnabled(False)
        self._set_status("Loading…")
        self._background.start(self._loader, self._loaded, self._failed)

    def _loaded(self, records: Sequence[Any]) -> None:
        self.status_label.setProperty("role", "secondary")
        self.status_label.style().polish(self.status_label)
        self.model.set_records(records)
        self.refresh_button.setEnabled(True)
        self._set_status("" if records else self._empty_text)
        if len(records) <= AUTO_SIZE_LIMIT:
            self.table.resizeColumnsToContents()
        self._update_count()

    def _failed(self, exc: BaseException) -> None:
        self.refresh_button.setEnabled(True)
        self.status_label.setProperty("role", "error")
        self.status_label.style().polish(self.status_label)
        self._set_status(f"Could not load: {exc}")

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.setVisible(bool(text))

    def _apply_filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text)
        self._update_count()

    def _update_count(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.count_label.setText(f"{shown} of {total}" if shown != total else f"{total}")
