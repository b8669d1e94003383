"""The in-process live feed: the hub publishes batches of FleetEvents, views subscribe.

Subscribers are called on the publisher's thread (the hub's network or store
thread); the console's bridge moves them to the GUI thread. A subscriber that
raises is logged and kept, because one broken view must not stop the feed for
the others.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from core.ports.live import FleetEvent, LiveFeed, Subscriber

log = logging.getLogger(__name__)


class EventBus(LiveFeed):
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._state = "disconnected"
        # devices some view shows in full (focus); a publisher reads this
        # snapshot without the lock
        self._focus: Counter[str] = Counter()
        self.focused: frozenset[str] = frozenset()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, events: Sequence[FleetEvent]) -> None:
        if not events:
            return
        with self._lock:
            subscribers = list(self._subscribers)
        batch = list(events)
        for callback in subscribers:
            try:
                callback(batch)
            except Exception:
                log.exception("live-feed subscriber %r failed", callback)

    def focus(self, device_ids: Iterable[str]) -> Callable[[], None]:
        wanted = list(dict.fromkeys(device_ids))
        with self._lock:
            self._focus.update(wanted)
            self.focused = frozenset(self._focus)
        done = False

        def withdraw() -> None:
            nonlocal done
            with self._lock:
                if done:
                    return
                done = True
                self._focus.subtract(wanted)
                self._focus = Counter({k: n for k, n in self._focus.items() if n > 0})
                self.focused = frozenset(self._focus)

        return withdraw

    def connection_state(self) -> str:
        return self._state

    def set_connection_state(self, state: str) -> None:
        self._state = state

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)
