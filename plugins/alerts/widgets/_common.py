"""Small pieces the alert widgets share: live events on the GUI thread, the
backend fetched off the GUI thread, colours and relative times."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from core.model import Severity
from core.model.events import FleetEvent
from core.ports.live import LiveFeed

log = logging.getLogger(__name__)

SEVERITY_COLOURS = {Severity.CRITICAL: "#dc2626", Severity.WARNING: "#d97706",
                    Severity.INFO: "#2563eb"}
SEVERITY_ORDER = (Severity.CRITICAL, Severity.WARNING, Severity.INFO)


class LiveEvents(QObject):
    """Batches of FleetEvents delivered on the GUI thread, coalesced on a timer.

    Uses the console's ``LiveBridge`` when it exists; otherwise a thread-safe
    queue drained by a QTimer, so the UI's cost follows the timer, not the
    message rate. ``kinds`` drops everything else before it reaches Qt.
    """

    batch = Signal(list)

    def __init__(self, feed: LiveFeed, kinds: set[type[FleetEvent]] | None = None,
                 parent: QObject | None = None, *, interval_ms: int = 100) -> None:
        super().__init__(parent)
        self._kinds = kinds
        self._queue: deque[FleetEvent] = deque(maxlen=50_000)
        self._unsubscribe: Callable[[], None] | None = None
        self._bridge: Any = None
        bridge_cls = _live_bridge_class()
        if bridge_cls is not None:
            try:
                # kinds filtered on the feed's thread: no telemetry buffered for us
                self._bridge = bridge_cls(feed, kinds=kinds, parent=self)
                self._bridge.batch.connect(self._on_bridge_batch)
                return
            except Exception:
                log.warning("LiveBridge unusable; using a polling queue", exc_info=True)
                self._bridge = None
        self._lock = threading.Lock()
        self._unsubscribe = feed.subscribe(self._on_feed)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.flush)
        self._timer.start()
        self.destroyed.connect(lambda *_: self.close())

    def _wanted(self, events: list[FleetEvent]) -> list[FleetEvent]:
        if self._kinds is None:
            return list(events)
        return [e for e in events if type(e) in self._kinds]

    def _on_feed(self, events: list[FleetEvent]) -> None:  # any thread
        wanted = self._wanted(events)
        if wanted:
            self._queue.extend(wanted)

    def _on_bridge_batch(self, events: list[FleetEvent]) -> None:
        wanted = self._wanted(events)
        if wanted:
            self.batch.emit(wanted)

    def flush(self) -> None:
        """Deliver what is queued now (the timer calls this; tests may too)."""
        if self._bridge is not None:
            flush = getattr(self._bridge, "flush", None)
            if callable(flush):
                flush()
            return
        events: list[FleetEvent] = []
        while self._queue:
            try:
                events.append(self._queue.popleft())
            except IndexError:
                break
        if events:
            self.batch.emit(events)

    def close(self) -> None:
        if self._unsubscribe is not None:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
            unsubscribe()
        if self._bridge is not None:
            for name in ("close", "stop"):
                method = getattr(self._bridge, name, None)
                if callable(method):
                    try:
                        method()
                    except Exception:
                        log.debug("bridge %s failed", name, exc_info=True)
                    break


def _live_bridge_class() -> Any:
    try:
        from console.bridge import LiveBridge
    except ImportError:
        return None
    return LiveBridge


def relative_time(when: datetime | None, now: datetime | None = None) -> str:
    if when is None:
        return ""
    seconds = ((now or datetime.now(UTC)) - when).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        text = f"{int(seconds)} s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)} min"
    elif seconds < 86400:
        text = f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"
    else:
        text = f"{int(seconds // 86400)}d {int(seconds % 86400 // 3600)}h"
    return f"in {text}" if future else f"{text} ago"


def local_time(when: datetime | None, *, seconds: bool = True) -> str:
    if when is None:
        return ""
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def short_time(when: datetime | None) -> str:
    """``10:42`` today, ``Mar 3 10:42`` otherwise."""
    if when is None:
        return ""
    local = when.astimezone()
    if local.date() == datetime.now().astimezone().date():
        return local.strftime("%H:%M")
    return local.strftime("%b %d %H:%M")


def find_main_window(widget: Any) -> Any:
    """The window that has ``set_badge`` (MainWindow), or None in a bare test."""
    window = widget.window() if widget is not None else None
    return window if window is not None and hasattr(window, "set_badge") else None


def set_badge(widget: Any, page_id: str, text: str) -> None:
    window = find_main_window(widget)
    if window is None:
        return
    with contextlib.suppress(KeyError):  # the page is not in this window's navigation
        window.set_badge(page_id, text)


class AlertActions(QObject):
    """This console acknowledged, snoozed or resolved alerts (``done``).

    The alerting service writes to the store and publishes nothing; other
    views learn of it from the change feed (a poll every 2 s) or their own
    15 s poll, so the status bar's "Needs attention" and the navigation badge
    lagged behind the queue the person had just cleared. Everything that
    counts alerts in this console recounts on this signal instead."""

    done = Signal()


_actions: AlertActions | None = None


def alert_actions() -> AlertActions:
    """The console's one AlertActions (made on first use, on the GUI thread)."""
    global _actions
    if _actions is None:
        _actions = AlertActions()
    return _actions
