"""Status-bar summary of the alerts that need attention ("● 2 critical ● 5
warning"); it also keeps the navigation badge current and owns the
critical-alert notifier, so both work before the Alerts page is first opened.

"Needs attention" (active, not snoozed) is defined once, in
core.services.fleet_health; the Alerts page header and the badge use it too.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QWidget

from console.theme import current_colors
from console.widgets.background import BackgroundCall
from core.context import AppContext
from core.model import Severity
from core.ports.backend import Backend
from core.ports.live import EventKind, FleetEvent
from core.services.fleet_health import load_attention_counts

from ._common import SEVERITY_COLOURS, SEVERITY_ORDER, LiveEvents, find_main_window, set_badge
from .notifier import CriticalNotifier

log = logging.getLogger(__name__)

MIN_RECOUNT_MS = 500     # at most two store counts per second, whatever the event rate
POLL_MS = 15_000         # and a poll: a snooze that ends brings its alert back
ATTENTION_TIP = "Alerts that need attention: active (not acknowledged) and not snoozed"


def active_counts(backend: Backend) -> dict[Severity, int]:
    """Alerts that need attention, by severity (the badge, the header, this)."""
    return load_attention_counts(backend.alerts)


class AlertStatusWidget(QLabel):
    counts_changed = Signal(dict)

    def __init__(self, context: AppContext, parent: QWidget | None = None, *,
                 notifier: CriticalNotifier | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AlertStatus")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.context = context
        self.backend: Backend | None = None
        self.counts: dict[Severity, int] = {}
        self.live: LiveEvents | None = None
        self.notifier = notifier or CriticalNotifier(self)
        self._background = BackgroundCall(self)
        self._counting = False
        self._again = False
        self._throttle = QTimer(self, singleShot=True, interval=MIN_RECOUNT_MS)
        self._throttle.timeout.connect(self.recount)
        self._poll = QTimer(self, interval=POLL_MS)
        self._poll.timeout.connect(self.recount)
        self.setText("Alerts: …")
        self.setToolTip(ATTENTION_TIP + "; click to open the alert queue")
        self._background.start(lambda: context.backend, self._ready,
                               lambda exc: self.setText("Alerts: unavailable"))

    def _ready(self, backend: Backend) -> None:
        self.backend = backend
        if backend.live is not None:
            # CHANGES: alerts changed by another process (the CLI, another console)
            self.live = LiveEvents(backend.live, {EventKind.ALERT, EventKind.CHANGES}, self)
            self.live.batch.connect(self.apply_events)
        self._poll.start()
        self.recount()

    def apply_events(self, events: list[FleetEvent]) -> None:
        self.notifier.feed(events)
        if not self._throttle.isActive():
            self._throttle.start()

    def recount(self) -> None:
        if self.backend is None:
            return
        if self._counting:
            self._again = True
            return
        self._counting = True
        backend = self.backend
        self._background.start(lambda: active_counts(backend), self._counted, self._failed)

    def _failed(self, exc: BaseException) -> None:
        self._counting = False
        log.debug("alert counts failed: %s", exc)
        self.setToolTip(f"Could not count alerts: {exc}")

    def _counted(self, counts: dict[Severity, int]) -> None:
        self._counting = False
        self.counts = counts
        self.setText(format_counts(counts))
        total = sum(counts.values())
        set_badge(self, "alerts", str(total) if total else "")
        self.counts_changed.emit(counts)
        if self._again:
            self._again = False
            self._throttle.start()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self.counts:
            total = sum(self.counts.values())
            set_badge(self, "alerts", str(total) if total else "")

    def mousePressEvent(self, event: Any) -> None:
        window = find_main_window(self)
        if window is not None:
            with contextlib.suppress(KeyError):
                window.show_page("alerts")
        super().mousePressEvent(event)


def format_counts(counts: dict[Severity, int]) -> str:
    shown = [(s, n) for s, n in ((s, counts.get(s, 0)) for s in SEVERITY_ORDER) if n]
    if not shown:
        return (f"<span style='color:{current_colors().success}'>●</span> "
                "no alert needs attention")
    return "Needs attention:&nbsp; " + "&nbsp;&nbsp;".join(
        f"<span style='color:{SEVERITY_COLOURS[s]}'>●</span> {n} {s.value}" for s, n in shown)


def build_alert_status(context: AppContext) -> AlertStatusWidget:
    return AlertStatusWidget(context)
