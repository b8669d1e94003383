"""Show or hide a list's columns from its header's context menu, remembered.

A single-organisation fleet reads "demo" in every row of Organization, and a
technician on a laptop would rather give that width to the devices' names.
Right-click a header: every column with a tick; the identity column cannot be
hidden (a row must say what it is). The choice is kept in ``window.ini`` next
to the config file (``console/window_state.py``), per list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import QObject, QPoint, QSettings, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QTableView

FILE_NAME = "window.ini"  # the window's own file (console/window_state.py)


class ColumnChooser(QObject):
    """The header's menu of ``table``'s columns; ``keep`` cannot be hidden.
    ``changed(col, shown)`` runs after a column is shown or hidden (a width
    to restore, a list to refit)."""

    def __init__(self, table: QTableView, settings_dir: Path | None, key: str,
                 keep: Iterable[int] = (),
                 changed: Callable[[int, bool], None] = lambda col, shown: None) -> None:
        super().__init__(table)
        self.table = table
        self.path = None if settings_dir is None else Path(settings_dir) / FILE_NAME
        self.key = f"columns/{key}/hidden"
        self.keep = frozenset(keep)
        self.changed = changed
        header = table.horizontalHeader()
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._show_menu)
        header.setToolTip("Right-click to choose the columns")
        for col in self._saved():
            if col not in self.keep and 0 <= col < header.count():
                header.setSectionHidden(col, True)

    # ------------------------------------------------------------------ the menu
    def menu(self) -> QMenu:
        """A menu of the columns, ticked where shown (built anew each time)."""
        header = self.table.horizontalHeader()
        model = self.table.model()
        menu = QMenu(self.table)
        menu.setObjectName("ColumnMenu")
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # a new one each right-click
        for col in range(header.count()):
            title = str(model.headerData(col, Qt.Orientation.Horizontal) or f"Column {col + 1}")
            action = QAction(title, menu)
            action.setCheckable(True)
            action.setChecked(not header.isSectionHidden(col))
            action.setEnabled(col not in self.keep)
            action.toggled.connect(lambda shown, c=col: self.set_shown(c, shown))
            menu.addAction(action)
        menu.addSeparator()
        every = menu.addAction("Show all columns")
        every.triggered.connect(self.show_all)
        return menu

    def _show_menu(self, at: QPoint) -> None:
        self.menu().popup(self.table.horizontalHeader().mapToGlobal(at))

    # ------------------------------------------------------------------ changes
    def set_shown(self, col: int, shown: bool) -> None:
        if col in self.keep and not shown:
            return
        self.table.horizontalHeader().setSectionHidden(col, not shown)
        self._save()
        self.changed(col, shown)

    def show_all(self) -> None:
        header = self.table.horizontalHeader()
        for col in self.hidden():
            header.setSectionHidden(col, False)
            self.changed(col, True)
        self._save()

    def hidden(self) -> list[int]:
        header = self.table.horizontalHeader()
        return [col for col in range(header.count()) if header.isSectionHidden(col)]

    # ------------------------------------------------------------------ kept
    def _settings(self) -> QSettings | None:
        return None if self.path is None else QSettings(str(self.path),
                                                        QSettings.Format.IniFormat)

    def _saved(self) -> list[int]:
        settings = self._settings()
        if settings is None:
            return []
        value = settings.value(self.key, "")
        words = value if isinstance(value, list) else str(value or "").split(",")
        return [int(w) for w in words if str(w).strip().isdecimal()]

    def _save(self) -> None:
        settings = self._settings()
        if settings is None:
            return
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        settings.setValue(self.key, ",".join(str(c) for c in self.hidden()))
        settings.sync()
