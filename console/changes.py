"""Pages learn that the data they show changed elsewhere (the hub, another
console, a ``smartiot`` command) without a manual Refresh.

The backend's change watcher (``core.services.change_feed``) publishes a
``changes`` event per topic that moved in the store; ``watch_changes`` hands
a page those of its topics through a ``LiveBridge`` that keeps nothing else,
at most every ``interval_ms``. Topics are in ``core.ports.changes``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import shiboken6
from PySide6.QtCore import QObject

from console.bridge import LiveBridge
from console.widgets.background import BackgroundCall
from core.context import AppContext
from core.model.events import DataChanged, FleetEvent
from core.ports.backend import Backend


class ChangeWatch(QObject):
    """Calls ``callback(changed_topics)`` on the GUI thread; lives as the
    owner's child, so it ends with the page."""

    def __init__(self, owner: QObject, topics: Iterable[str],
                 callback: Callable[[set[str]], None], *, interval_ms: int = 250) -> None:
        super().__init__(owner)
        self.topics = frozenset(topics)
        self._callback = callback
        self._interval_ms = interval_ms
        self.bridge: LiveBridge | None = None
        self.delivered = 0

    def attach(self, backend: Backend) -> None:
        if backend.live is None or self.bridge is not None:
            return  # no live feed (e.g. a store-only backend): pages keep their Refresh
        self.bridge = LiveBridge(backend.live, kinds={DataChanged},
                                 interval_ms=self._interval_ms, parent=self)
        self.bridge.batch.connect(self._on_batch)

    def _on_batch(self, events: list[FleetEvent]) -> None:
        changed = {e.topic for e in events if isinstance(e, DataChanged)} & self.topics
        if changed and shiboken6.isValid(self):
            self.delivered += 1
            self._callback(changed)


def watch_changes(owner: QObject, topics: Iterable[str],
                  callback: Callable[[set[str]], None], *,
                  context: AppContext | None = None,
                  backend: Backend | None = None) -> ChangeWatch:
    """Subscribe ``owner`` (a page) to changes of ``topics``.

    Give the ``backend`` if the page has it already, else the ``context``:
    the backend is then fetched off the GUI thread (opening it may take a
    while the first time)."""
    watch = ChangeWatch(owner, topics, callback)
    if backend is not None:
        watch.attach(backend)
    elif context is not None:
        ctx = context
        BackgroundCall(watch).start(lambda: ctx.backend, watch.attach, lambda _exc: None)
    else:
        raise ValueError("watch_changes needs the backend or the context")
    return watch
