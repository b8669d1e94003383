"""What the page area shows when a plugin page cannot: an error page for a
page whose factory failed, and an empty state when there are no pages at all.

A technician in the field cannot read a traceback in a terminal they never
opened, so the failure is shown where the page would have been, names the
page and the code that broke, and the rest of the console keeps working.
"""

from __future__ import annotations

import traceback

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from console.icons import status_icon
from core.registrations import PageSpec

EMPTY_MESSAGE = "No pages: all page plugins are disabled — see Help \u203a Plugins"


def factory_origin(spec: PageSpec) -> str:
    """The module that defined the factory: PageSpec does not record which
    plugin registered it, and the module names the plugin package in practice."""
    module = getattr(spec.factory, "__module__", None) or "unknown module"
    name = getattr(spec.factory, "__qualname__", None) or type(spec.factory).__name__
    return f"{module}.{name}"


class ErrorPage(QWidget):
    retry_requested = Signal(str)

    def __init__(self, spec: PageSpec, error: BaseException,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ErrorPage")
        self.page_id = spec.page_id
        self.origin = factory_origin(spec)
        self.summary = f"{type(error).__name__}: {error}"
        self.details = "".join(traceback.format_exception(error))

        layout = QVBoxLayout(self)
        layout.setContentsMargins(32, 28, 32, 28)
        layout.setSpacing(10)

        heading = QHBoxLayout()
        icon = QLabel()
        icon.setPixmap(status_icon("error").pixmap(22, 22))
        self.title = QLabel(f"The “{spec.title}” page could not be opened")
        self.title.setProperty("role", "title")
        heading.addWidget(icon)
        heading.addWidget(self.title, 1)
        layout.addLayout(heading)

        self.message = QLabel(
            f"Page <b>{spec.page_id}</b> built by <code>{self.origin}</code> failed with "
            f"<b>{_escape(self.summary)}</b>.<br>The other pages keep working. Copy the "
            "details below into a support ticket, or retry after fixing the cause."
        )
        self.message.setTextFormat(Qt.TextFormat.RichText)
        self.message.setWordWrap(True)
        self.message.setProperty("role", "secondary")
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.message)

        self.details_view = QPlainTextEdit(self.details)
        self.details_view.setObjectName("ErrorDetails")
        self.details_view.setReadOnly(True)
        self.details_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        layout.addWidget(self.details_view, 1)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.retry_button = QPushButton("Retry")
        self.retry_button.clicked.connect(lambda: self.retry_requested.emit(self.page_id))
        buttons.addWidget(self.retry_button)
        layout.addLayout(buttons)

    def text(self) -> str:
        return f"{self.title.text()}\n{self.summary}\n{self.details}"


class EmptyState(QWidget):
    open_plugins_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("EmptyState")
        layout = QVBoxLayout(self)
        layout.addStretch(2)

        icon = QLabel()
        icon.setPixmap(status_icon("warning").pixmap(40, 40))
        icon.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(icon)

        self.title = QLabel("Nothing to show yet")
        self.title.setProperty("role", "title")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.title)

        self.message = QLabel(EMPTY_MESSAGE)
        self.message.setProperty("role", "secondary")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        layout.addWidget(self.message)

        row = QHBoxLayout()
        row.addStretch(1)
        self.button = QPushButton("Open Plugins…")
        self.button.setProperty("accent", True)
        self.button.clicked.connect(self.open_plugins_requested)
        row.addWidget(self.button)
        row.addStretch(1)
        layout.addSpacing(6)
        layout.addLayout(row)
        layout.addStretch(3)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
