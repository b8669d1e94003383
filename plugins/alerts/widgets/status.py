"""Status-bar summary of the alerts that need attention ("● 2 critical ● 5
warning"); it also keeps the navigation badge current and owns the
critical-alert notifier, so both work before the Alerts page is first opened.

"Needs attention" (active, not snoozed) is defined once, in
core.services.fleet_health; the Alerts page header and the badge use it too.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QWidget

from console.theme import current_colors
from console.widgets.background import BackgroundCall
from core.context import AppContext
from core.model import Severity
from core.model.events import AlertChanged, DataChanged, FleetEvent
from core.ports.fleet_api.alerts import AlertsApi
from core.ports.live import LiveFeed

from ._common import SEVERITY_COLOURS, SEVERITY_ORDER, LiveEvents, alert_actions, set_badge
from .notifier import CriticalNotifier

log = logging.getLogger(__name__)

MIN_RECOUNT_MS = 500     # at most two store counts per second, whatever the event rate
POLL_MS = 15_000         # and a poll: a snooze that ends brings its alert back
ATTENTION_TIP = "Alerts that need attention: active (not acknowledged) and not snoozed"


class AlertStatusWidget(QLabel):
    counts_changed = Signal(dict)

    def __init__(self, context: AppContext, parent: QWidget | None = None, *,
                 notifier: CriticalNotifier | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AlertStatus")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.context = context
        self.alerts: AlertsApi | None = None
        self.counts: dict[Severity, int] = {}
        self.live: LiveEvents | None = None
        self.notifier = notifier or CriticalNotifier(self, navigation=context.navigation)
        self._background = BackgroundCall(self)
        self._throttle = QTimer(self, singleShot=True, interval=MIN_RECOUNT_MS)
        self._throttle.timeout.connect(self.recount)
        self._poll = QTimer(self, interval=POLL_MS)
        self._poll.timeout.connect(self.recount)
        self.setText("Alerts: …")
        self.setToolTip(ATTENTION_TIP + "; click to open the alert queue")
        # Both are fetched off the GUI thread: the answer may arrive after the
        # window began closing, when the context no longer hands out its backend.
        self._background.start(lambda: (context.api.alerts, context.backend.live), self._ready,
                               lambda exc: self.setText("Alerts: unavailable"))

    def _ready(self, ready: tuple[AlertsApi, LiveFeed | None]) -> None:
        alerts, live = ready  # live events stay on the backend's feed for now
        self.alerts = alerts
        if live is not None:
            # DataChanged: alerts changed by another process (the CLI, another console)
            self.live = LiveEvents(live, {AlertChanged, DataChanged}, self)
            self.live.batch.connect(self.apply_events)
        self._poll.start()
        # this console's own acknowledgement, snooze or resolve: recount at once
        alert_actions().done.connect(self.recount)
        self.recount()

    def apply_events(self, events: list[FleetEvent]) -> None:
        self.notifier.feed(events)
        if not self._throttle.isActive():
            self._throttle.start()

    def recount(self) -> None:
        if self.alerts is None:
            return
        alerts = self.alerts
        # key: a recount started while one runs supersedes it; only the newest paints
        self._background.start(lambda: alerts.counts().attention, self._counted, self._failed,
                               key="counts")

    def _failed(self, exc: BaseException) -> None:
        log.debug("alert counts failed: %s", exc)
        self.setToolTip(f"Could not count alerts: {exc}")

    def _counted(self, counts: dict[Severity, int]) -> None:
        self.counts = counts
        self.setText(format_counts(counts))
        total = sum(counts.values())
        set_badge(self, "alerts", str(total) if total else "")
        self.counts_changed.emit(counts)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self.counts:
            total = sum(self.counts.values())
            set_badge(self, "alerts", str(total) if total else "")

    def mousePressEvent(self, event: Any) -> None:
        self.context.navigation.open("alerts")
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
