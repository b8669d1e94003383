"""Help > About: versions and paths, the first thing a support ticket needs.

Versions come from installed distribution metadata rather than importing the
libraries, so opening About never drags boto3 or SQLAlchemy into memory.
"""

from __future__ import annotations

import importlib.metadata
import platform

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from console.icons import app_icon
from core import __version__
from core.context import AppContext

DISTRIBUTIONS = ("pyqtgraph", "SQLAlchemy", "paho-mqtt", "boto3", "numpy")


def _distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def version_rows() -> list[tuple[str, str]]:
    rows = [
        ("Smart IoT Fleet Console", __version__),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("Qt", qVersion()),
        ("PySide6", PySide6.__version__),
    ]
    rows += [(name, _distribution_version(name)) for name in DISTRIBUTIONS]
    rows.append(("Platform", platform.platform(terse=True)))
    return rows


def path_rows(context: AppContext) -> list[tuple[str, str]]:
    config = context.config
    return [
        ("Config file", str(config.path)),
        ("Data directory", str(config.data_dir)),
        ("Profile", f"{config.profile_name} ({config.profile.backend} backend)"),
    ]


class AboutDialog(QDialog):
    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Smart IoT Fleet Console")
        self.resize(600, 600)
        self.rows = version_rows() + path_rows(context)

        logo = QLabel()
        logo.setPixmap(app_icon().pixmap(64, 64))
        title = QLabel("Smart IoT Fleet Console")
        title.setProperty("role", "title")
        subtitle = QLabel(f"Version {__version__} · devices, alerts, OTA firmware and "
                          "analytics for IoT fleets")
        subtitle.setProperty("role", "secondary")
        subtitle.setWordWrap(True)
        head_text = QVBoxLayout()
        head_text.addWidget(title)
        head_text.addWidget(subtitle)
        head = QHBoxLayout()
        head.addWidget(logo, 0, Qt.AlignmentFlag.AlignTop)
        head.addSpacing(8)
        head.addLayout(head_text, 1)

        self.table = QTableWidget(len(self.rows), 2)
        self.table.setHorizontalHeaderLabels(("Component", "Version / location"))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        for row, (name, value) in enumerate(self.rows):
            self.table.setItem(row, 0, QTableWidgetItem(name))
            item = QTableWidgetItem(value)
            item.setToolTip(value)
            self.table.setItem(row, 1, item)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.as_text()))
        for button in buttons.buttons():  # nothing here to confirm: no accent button
            if isinstance(button, QPushButton):
                button.setAutoDefault(False)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addSpacing(6)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)

    def as_text(self) -> str:
        return "\n".join(f"{name}: {value}" for name, value in self.rows)
