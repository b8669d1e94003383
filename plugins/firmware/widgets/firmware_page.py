"""The Firmware page: the library (import, signatures, versions in the fleet)
and the OTA deployments (wizard and live monitor), one tab each.

Keys: Ctrl+I import, Ctrl+N new deployment, F5 reload the tab in view.
"""

from __future__ import annotations

from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from core.context import AppContext
from plugins.firmware.widgets.deployments_tab import DeploymentsTab
from plugins.firmware.widgets.library_tab import LibraryTab


class FirmwarePage(QWidget):
    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.library = LibraryTab(context)
        self.deployments = DeploymentsTab(context)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.library, "Library")
        self.tabs.addTab(self.deployments, "Deployments")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        self.library.loaded.connect(self._share_types)
        self.deployments.wizard_closed.connect(self.library.refresh)
        for keys, slot in (("Ctrl+I", self.open_import), ("Ctrl+N", self.new_deployment),
                           (QKeySequence.StandardKey.Refresh, self.refresh)):
            QShortcut(QKeySequence(keys), self, slot)

    def open_import(self) -> None:
        self.tabs.setCurrentWidget(self.library)
        self.library.open_import()

    def new_deployment(self) -> None:
        self.tabs.setCurrentWidget(self.deployments)
        self.deployments.new_deployment()

    def refresh(self) -> None:
        current = self.tabs.currentWidget()
        if current is self.library:
            self.library.refresh()
        else:
            self.deployments.refresh()

    def _share_types(self) -> None:
        self.deployments.device_types = list(self.library.device_types)


def build_firmware_page(context: AppContext) -> FirmwarePage:
    return FirmwarePage(context)
