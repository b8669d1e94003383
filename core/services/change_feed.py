"""Turns change tokens into live events: what another process changed reaches
the pages within one poll interval, without a manual Refresh.

``ChangeWatcher`` polls a backend's ``ChangeTokens`` on its own thread every
``interval_s`` (2 s) and publishes one ``DataChanged`` event per topic
whose token moved (its ``topic``) into the live feed, which the
console's bridge already carries to the GUI thread. One poll is a handful of
aggregate queries whatever the number of open pages; a page reloads only
the topics it shows, only when they changed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence

from core.model.events import DataChanged, FleetEvent
from core.ports.changes import ChangeTokens

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 2.0


def change_event(topic: str) -> DataChanged:
    return DataChanged(topic)


class ChangeWatcher:
    def __init__(self, source: ChangeTokens,
                 publish: Callable[[Sequence[FleetEvent]], None], *,
                 interval_s: float = DEFAULT_INTERVAL_S,
                 active: Callable[[], bool] = lambda: True) -> None:
        """``active``: whether anyone listens now; a headless hub's feed has
        no subscribers, so it pays for one query set at start and no more."""
        self._source = source
        self._publish = publish
        self._active = active
        self.interval_s = interval_s
        self._last: Mapping[str, str] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0
        self.failures = 0

    def start(self) -> ChangeWatcher:
        """Takes the baseline now, before any page has loaded: a change made
        between a page's first load and the watcher's first poll would
        otherwise be taken for the baseline and never reported."""
        if self._last is None:
            try:
                self._last = dict(self._source.tokens())
            except Exception as exc:  # noqa: BLE001 - the thread's first poll retries
                log.warning("change watcher: could not read change tokens: %s", exc)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="change-watcher",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def poll_once(self) -> list[str]:
        """Compare the tokens with the previous poll; publish and return the
        topics that changed (none on the first poll: it sets the baseline)."""
        tokens = dict(self._source.tokens())
        self.polls += 1
        previous, self._last = self._last, tokens
        if previous is None:
            return []
        changed = [t for t, token in tokens.items() if previous.get(t) != token]
        if changed:
            self._publish([change_event(t) for t in changed])
        return changed

    def _run(self) -> None:
        while True:
            try:
                # Nobody listening: no queries. The baseline is kept, so what
                # changed meanwhile is reported once someone listens again.
                if self._active():
                    self.poll_once()
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not end the feed
                self.failures += 1
                log.warning("change watcher: could not read change tokens: %s", exc)
            if self._stop.wait(self.interval_s):
                return
