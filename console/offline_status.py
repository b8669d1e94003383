"""What the person sees of work on a bad connection (core.ports.offline):

- in the status bar, the changes waiting in the outbox and the age of the
  oldest ("2 actions pending · oldest 4 min"), what stops them ("Sign in
  again…") and, in red, those that need a decision, with a button that opens
  the list where each is retried on the new state or dropped;
- above the pages, while the server cannot be reached, a banner saying the
  pages show cached data and from when ("Offline — showing data from 12:03
  (4 min ago)").

Both poll the session's cheap ``status()`` once a second: the outbox's sender
runs on its own thread and never touches Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from console.dialogs.pending_actions_dialog import PendingActionsDialog
from core.ports.offline import OfflineStatus, OfflineWork

POLL_MS = 1000


def age(since: datetime, now: datetime) -> str:
    """"just now", "4 min", "2 h 05 min", "3 days"."""
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 60:
        return "just now" if seconds < 5 else f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes // (24 * 60)} days"


def pending_text(status: OfflineStatus, now: datetime) -> str:
    if not status.pending:
        return ""
    what = "1 action pending" if status.pending == 1 else f"{status.pending} actions pending"
    if status.oldest is not None:
        what += f" · oldest {age(status.oldest, now)}"
    return what


def banner_text(status: OfflineStatus, now: datetime, server: str) -> str:
    if not status.offline:
        return ""
    if status.data_from is None:
        return (f"Offline — {server} cannot be reached and nothing was read from it yet. "
                "Changes you make are queued and sent when it answers.")
    local = status.data_from.astimezone()
    ago = age(status.data_from, now)
    ago = ago if ago == "just now" else f"{ago} ago"
    return (f"Offline — showing data from {local:%H:%M} ({ago}). {server} cannot be "
            "reached; changes you make are queued.")


def _set_role(widget: QWidget, role: str) -> None:
    if widget.property("role") != role:
        widget.setProperty("role", role)
        widget.style().unpolish(widget)
        widget.style().polish(widget)


class PendingActionsIndicator(QWidget):
    """The status bar's part: pending count and age, problem, decisions."""

    def __init__(self, work: OfflineWork, *, sign_in: Callable[[], object] | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PendingActions")
        self.work = work
        self._now = now
        self._sign_in = sign_in
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel(self)
        self.label.setObjectName("PendingActionsLabel")
        self.problem = QLabel(self)
        self.problem.setObjectName("PendingActionsProblem")
        _set_role(self.problem, "secondary")
        self.sign_in_button = QPushButton("Sign in…", self)
        self.sign_in_button.setFlat(True)
        self.sign_in_button.clicked.connect(self._ask_sign_in)
        self.decide_button = QPushButton(self)
        self.decide_button.setObjectName("PendingActionsDecide")
        self.decide_button.setFlat(True)
        self.decide_button.clicked.connect(self.open_review)
        _set_role(self.decide_button, "error")
        for w in (self.label, self.problem, self.sign_in_button, self.decide_button):
            layout.addWidget(w)
        self.dialog: PendingActionsDialog | None = None
        self.status = OfflineStatus()
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    def refresh(self) -> None:
        self.status = status = self.work.status()
        self.label.setText(pending_text(status, self._now()))
        self.label.setVisible(bool(status.pending))
        short = status.problem if len(status.problem) <= 60 else status.problem[:58] + "…"
        self.problem.setText(short)
        self.problem.setToolTip(status.problem)
        self.problem.setVisible(bool(status.problem))
        self.sign_in_button.setVisible(status.problem.startswith("Sign in again")
                                       and self._sign_in is not None)
        n = status.needs_decision
        self.decide_button.setText("1 action needs your decision…" if n == 1
                                   else f"{n} actions need your decision…")
        self.decide_button.setVisible(n > 0)
        self.setToolTip("Changes you made are kept in this console's outbox and sent, "
                        "exactly once, when the server answers." if status.pending or n
                        else "")
        self.setVisible(bool(status.pending or n))

    def open_review(self) -> PendingActionsDialog:
        dialog = PendingActionsDialog(self.work, parent=self.window())
        dialog.finished.connect(lambda _r: self.refresh())
        self.dialog = dialog
        dialog.open()
        return dialog

    def _ask_sign_in(self) -> None:
        if self._sign_in is not None:
            self._sign_in()


class OfflineBanner(QLabel):
    """Above the pages while the server cannot be reached."""

    def __init__(self, work: OfflineWork, server: str, *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("OfflineBanner")
        self.setWordWrap(True)
        self.setMargin(6)
        _set_role(self, "warning")
        self.work = work
        self.server = server
        self._now = now
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    def refresh(self) -> None:
        text = banner_text(self.work.status(), self._now(), self.server)
        self.setText(text)
        self.setVisible(bool(text))
