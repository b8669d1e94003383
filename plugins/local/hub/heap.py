"""Keep the garbage collector's full passes off the hub's writer.

CPython starts a full (oldest-generation) collection whenever the long-lived
objects have grown by a quarter since the last one, and a full collection walks
every tracked object: the registry cache, the link statistics, the sequence
state, SQLAlchemy's metadata, per device. At 10,000 messages a second the
writer allocates so much that this happened several times a second, each pass
over the whole heap: ~10 µs of the writer's ~65 µs per message
(``bench/profile_hub_writer.py``, see docs/benchmarks.md).

``HeapSettler`` collects once, then moves what survived into the permanent
generation (``gc.freeze``), which later collections skip; every ``every_s`` it
unfreezes, collects everything and freezes again. Nothing is lost: frozen
objects are still freed by reference counting the moment nothing uses them,
and a reference cycle that becomes garbage while frozen is collected at the
next settle (at most ``every_s`` later) or when the hub stops
(``release``). The generations' thresholds are left alone, so a console
running the hub in its own process collects as it always did.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

SETTLE_EVERY_S = 60.0


class HeapSettler:
    """Collect, then freeze the survivors; again every ``every_s`` (writer thread)."""

    def __init__(self, every_s: float = SETTLE_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self._last: float | None = None
        self.settled = 0  # how many times (tests, status)

    def settle(self) -> None:
        """Unfreeze, collect everything, freeze what is left."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._last = self._clock()
        self.settled += 1

    def maybe_settle(self) -> bool:
        """``settle`` when ``every_s`` has passed since the last one (or none was)."""
        if self._last is not None and self._clock() - self._last < self.every_s:
            return False
        self.settle()
        return True

    def release(self) -> None:
        """Hand the frozen objects back to the collector (the hub stopped)."""
        if self._last is not None:
            gc.unfreeze()
            self._last = None
