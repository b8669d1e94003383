"""The line where a page says how its last load went.

People judge a table by how fresh it is: "Loading…" while a query runs,
"Updated 12:03:04" once it answered (local time, so a page left open shows
its age), and the error in red, in words, when it failed, so a page that
cannot reach its backend says so instead of showing an old table as if it
were current. The colours come from the theme's QLabel ``role`` styles.

Example, with a ``BackgroundCall``::

    self.status = StatusLine()
    ...
    def reload(self) -> None:
        self.status.loading()
        self._background.start(load, self._loaded, self.status.failed, key="list")

    def _loaded(self, rows: list[Device]) -> None:
        self.model.set_rows(rows)
        self.status.updated(f"{len(rows)} devices")
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import Enum

from PySide6.QtWidgets import QLabel, QWidget


class LoadState(Enum):
    IDLE = "idle"
    LOADING = "loading"
    UPDATED = "updated"
    FAILED = "failed"


_ROLES = {
    LoadState.IDLE: "secondary",
    LoadState.LOADING: "secondary",
    LoadState.UPDATED: "secondary",
    LoadState.FAILED: "error",
}


def error_text(error: BaseException | str) -> str:
    """An error in words: its message, or its kind when it has none."""
    if isinstance(error, str):
        return error
    return str(error) or type(error).__name__


class StatusLine(QLabel):
    """``loading()``, ``updated(summary)``, ``failed(error)``; ``clear()`` hides it."""

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        now: Callable[[], datetime] = datetime.now,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("StatusLine")
        self.setWordWrap(True)
        self._now = now
        self.state = LoadState.IDLE
        self.last_updated: datetime | None = None
        self._show(LoadState.IDLE, "")

    def loading(self, text: str = "Loading…") -> None:
        self._show(LoadState.LOADING, text)

    def updated(self, summary: str = "") -> None:
        """The load answered; ``summary`` (e.g. "42 devices") follows the time."""
        self.last_updated = self._now()
        text = f"Updated {self.last_updated:%H:%M:%S}"
        self._show(LoadState.UPDATED, f"{text} · {summary}" if summary else text)

    def failed(self, error: BaseException | str, doing: str = "Could not load") -> None:
        """The load failed: ``"{doing}: {message}"`` in red (no ``doing``: the
        message alone). The page keeps what it showed before; the time of the
        last good load stays in the tooltip."""
        message = error_text(error)
        self._show(LoadState.FAILED, f"{doing}: {message}" if doing else message)
        if self.last_updated is not None:
            self.setToolTip(f"Last updated {self.last_updated:%H:%M:%S}")

    def say(self, text: str) -> None:
        """A plain note (e.g. why a role sees no table), neither a load nor an error."""
        self._show(LoadState.IDLE, text)

    def clear(self) -> None:
        self._show(LoadState.IDLE, "")

    def _show(self, state: LoadState, text: str) -> None:
        self.state = state
        self.setToolTip("")
        self.setText(text)
        if self.parentWidget() is not None or not text:
            self.setVisible(bool(text))  # never pops up as a window of its own
        role = _ROLES[state]
        if self.property("role") != role:
            self.setProperty("role", role)
            self.style().unpolish(self)
            self.style().polish(self)
