"""Help > Plugins: every plugin, whether it loaded, and why not.

This is where a support engineer lands after "the Firmware page is gone", so
failures are unmistakable (red text, an error icon, sorted after the loaded
ones by the plugin manager) and the full error is readable and copyable.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from console.icons import status_icon
from console.theme import current_colors
from core.context import AppContext
from core.plugins import PluginInfo, PluginStatus
from core.text import plural

COLUMNS = ("Name", "Status", "Source", "Version", "Hooks", "Error")
_STATUS_ICON = {
    PluginStatus.LOADED: "online",
    PluginStatus.BLOCKED: "offline",
    PluginStatus.FAILED: "error",
    PluginStatus.DISABLED: "warning",
}


def _short_hooks(info: PluginInfo) -> str:
    return ", ".join(h.removeprefix("smartiot_") for h in info.hooks)


def describe(info: PluginInfo) -> str:
    lines = [
        f"Plugin:  {info.name}",
        f"Status:  {info.status.value}",
        f"Source:  {info.source}",
        f"Version: {info.version or '—'}",
        f"Hooks:   {_short_hooks(info) or '—'}",
        f"Requires: {', '.join(info.requires) or '—'}",
        f"Optional: {', '.join(info.optional) or '—'}",
    ]
    if info.error:
        lines += ["", "Error:", info.error]
    return "\n".join(lines)


class PluginsDialog(QDialog):
    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Plugins")
        self.resize(1180, 560)  # wide enough for the error column
        self.infos = context.plugins.infos()

        failed = sum(1 for i in self.infos if i.status is PluginStatus.FAILED)
        disabled = sum(1 for i in self.infos if i.status is PluginStatus.DISABLED)
        self.summary = QLabel(
            f"{plural(len(self.infos), 'plugin')}, {failed} failed"
            + (f", {disabled} disabled for a missing plugin they require" if disabled else "")
            + ". Failed, disabled and blocked plugins do not run; the rest of the console keeps "
            "working. Block a plugin with SMARTIOT_DISABLE_PLUGINS=name."
        )
        self.summary.setWordWrap(True)
        self.summary.setProperty("role", "secondary")

        self.table = QTableWidget(len(self.infos), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # Hook lists get long; cap them so the error column stays in view (the
        # full list is in the detail pane and the tooltip).
        hooks = COLUMNS.index("Hooks")
        header.setSectionResizeMode(hooks, QHeaderView.ResizeMode.Interactive)
        self.table.setColumnWidth(hooks, 260)
        header.setStretchLastSection(True)
        self._fill()

        self.details = QPlainTextEdit()
        self.details.setObjectName("ErrorDetails")
        self.details.setReadOnly(True)
        self.details.setPlaceholderText("Select a plugin to see its details.")

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton("Copy details",
                                             QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self._copy)
        for button in buttons.buttons():  # nothing here to confirm: no accent button
            if isinstance(button, QPushButton):
                button.setAutoDefault(False)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(splitter, 1)
        layout.addWidget(buttons)

        self.table.currentCellChanged.connect(lambda row, *_: self._show_details(row))
        if self.infos:
            first_failed = next((r for r, i in enumerate(self.infos)
                                 if i.status is PluginStatus.FAILED), 0)
            self.table.selectRow(first_failed)
            self._show_details(first_failed)

    def _fill(self) -> None:
        danger = QBrush(QColor(current_colors().danger))
        for row, info in enumerate(self.infos):
            values = (info.name, info.status.value, info.source, info.version,
                      _short_hooks(info), info.error.splitlines()[0] if info.error else "")
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(info.error or value)
                if info.status is PluginStatus.FAILED:
                    item.setForeground(danger)
                if col == 1:
                    item.setIcon(status_icon(_STATUS_ICON[info.status]))
                self.table.setItem(row, col, item)

    def row_of(self, name: str) -> int:
        for row, info in enumerate(self.infos):
            if info.name == name:
                return row
        raise KeyError(name)

    def cell_text(self, row: int, column: str) -> str:
        item = self.table.item(row, COLUMNS.index(column))
        return item.text() if item is not None else ""

    def _show_details(self, row: int) -> None:
        if 0 <= row < len(self.infos):
            self.details.setPlainText(describe(self.infos[row]))

    def _copy(self) -> None:
        QGuiApplication.clipboard().setText("\n\n".join(describe(i) for i in self.infos))
