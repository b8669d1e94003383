"""Remembers window geometry, dock/toolbar state and the open page.

The INI file sits next to the config file instead of QSettings' default
location, so a portable install carries it along and tests stay in their
temporary directories.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow

FILE_NAME = "window.ini"


class WindowStateStore:
    def __init__(self, config_path: Path) -> None:
        self.path = Path(config_path).parent / FILE_NAME

    def _settings(self) -> QSettings:
        return QSettings(str(self.path), QSettings.Format.IniFormat)

    def save(self, window: QMainWindow, page_id: str | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        settings = self._settings()
        settings.setValue("window/geometry", window.saveGeometry())
        settings.setValue("window/state", window.saveState())
        if page_id:
            settings.setValue("window/page", page_id)
        settings.sync()

    def restore(self, window: QMainWindow) -> str | None:
        """Returns the page that was open last time, if any."""
        settings = self._settings()
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            window.restoreGeometry(geometry)
        state = settings.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            window.restoreState(state)
        page = settings.value("window/page")
        return page if isinstance(page, str) and page else None
