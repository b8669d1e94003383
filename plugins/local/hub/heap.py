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
(``release``).

Freezing alone was not enough at 10,000 devices: a writer batch in flight
(20,000 messages, their readings and events) survives the young collections and
counts as long-lived growth, so CPython still ran a full pass about twice a
second over everything not frozen: 20 s of a 135 s run (bench/hub_bench.py's
collector line). So between the first settle and ``release`` the automatic
full passes are off (the oldest generation's threshold set out of reach) and
the settle is the only full pass; the young generations collect as before, and
``release`` puts the thresholds back.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

SETTLE_EVERY_S = 60.0
# The oldest generation's threshold while settled: gen1 collections before a
# full pass, never reached in practice.
FULL_PASSES_OFF = 1_000_000_000


class HeapSettler:
    """Collect, then freeze the survivors; again every ``every_s`` (writer thread)."""

    def __init__(self, every_s: float = SETTLE_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self._last: float | None = None
        self._thresholds: tuple[int, int, int] | None = None  # before the first settle
        self.settled = 0  # how many times (tests, status)

    def settle(self) -> None:
        """Unfreeze, collect everything, freeze what is left; nothing while
        automatic collection is off (a console collecting on its GUI thread,
        console/gui_thread_gc.py: a full pass here, on the writer thread, would
        run Qt destructors off that thread)."""
        if not gc.isenabled():
            self._last = self._clock()
            return
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        if self._thresholds is None:
            self._thresholds = gc.get_threshold()
            young, middle, _ = self._thresholds
            gc.set_threshold(young, middle, FULL_PASSES_OFF)
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
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None
        if self._last is not None:
            gc.unfreeze()
            self._last = None
