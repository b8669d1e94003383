"""The banner across the main window while the team's hub is gone.

A status-bar dot is easy to miss, and while the hub is away nothing is
stored, no alert is raised and rollouts wait: a person acting on a console
must know. The banner sits in a fixed tool bar at the top of the main window
(the window offers no other place a plugin may add to) and hides itself as
soon as the hub's heartbeat is back.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QSizePolicy,
    QToolBar,
    QWidget,
)

from console.theme import ThemeColors, current_colors, follow_theme

WHAT_WAITS = ("The broker keeps the devices' data for the hub; until it is back nothing "
              "is stored, no alert is raised and rollouts wait.")


class HubBanner(QFrame):
    """Hidden until ``show_gone``; ``install`` puts it on a main window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("HubGoneBanner")
        self.title = QLabel()
        self.title.setObjectName("HubGoneTitle")
        self.text = QLabel()
        self.text.setObjectName("HubGoneText")
        self.text.setWordWrap(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 12, 6)
        layout.setSpacing(10)
        layout.addWidget(self.title)
        layout.addWidget(self.text, 1)
        self._bar: QToolBar | None = None
        self.gone = False
        self._colour(current_colors())
        follow_theme(self, self._colour)

    def _colour(self, c: ThemeColors) -> None:
        self.setStyleSheet(
            f"QFrame#HubGoneBanner {{ background: {c.danger}; border-radius: 4px; }}"
            "QFrame#HubGoneBanner QLabel { color: white; }"
            "QLabel#HubGoneTitle { font-weight: bold; }")

    def install(self, window: QWidget) -> bool:
        """Once, on the main window; False when ``window`` is not one (yet)."""
        if self._bar is not None:
            return True
        if not isinstance(window, QMainWindow):
            return False
        bar = QToolBar("Hub status", window)
        bar.setObjectName("HubGoneBar")
        bar.setMovable(False)
        bar.setFloatable(False)
        bar.toggleViewAction().setVisible(False)  # not something to switch off
        bar.addWidget(self)
        window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        bar.setVisible(self.gone)
        self._bar = bar
        return True

    @property
    def shown(self) -> bool:
        """Whether the banner is up on its window."""
        return self.gone and self._bar is not None and not self._bar.isHidden()

    def show_gone(self, state: str, detail: str) -> None:
        title = ("The hub has stopped reporting" if state == "silent"
                 else "The hub is not running")
        self.title.setText(f"⚠ {title}")
        self.text.setText(f"{detail[:1].upper()}{detail[1:]}. {WHAT_WAITS}")
        self.gone = True
        if self._bar is not None:
            self._bar.setVisible(True)

    def clear(self) -> None:
        self.gone = False
        if self._bar is not None:
            self._bar.setVisible(False)
