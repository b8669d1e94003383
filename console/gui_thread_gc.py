"""The garbage collector runs on the GUI thread only.

CPython collects on whichever thread happens to allocate when a generation's
count passes its threshold. When that is a worker (a store read pool, the hub's
writer, an MQTT callback) and the garbage holds Qt objects in a reference cycle,
their destructors run off the GUI thread: Qt prints "Timers cannot be started
from another thread" and the process dies with SIGSEGV (seen in the history
bench's pooled reads, every run, and in a test worker during set-up).

``GuiThreadCollector`` turns automatic collection off and collects from a
timer on the GUI thread, so cycles are freed where Qt expects it. Objects
without cycles are freed by reference counting as always.

Every pause is a pause of the window, so each pass scans only what is new.
With the hub in the console's process at 10,000 devices the heap churns with
messages and readings that live a few seconds: by CPython's thresholds they
were scanned again in every older generation's pass (full passes 330-370 ms, a
young generation of 500 ms 130-165 ms; 6.9 s of 40). So every ``interval_ms``
(when CPython would have collected its youngest generation) the collector scans
everything not frozen and freezes what survives (``gc.freeze``): each object is
scanned about once, and a cycle that dies within the interval is freed at once.
A cycle that outlived a pass waits for the whole heap's pass, every
``full_heap_every_s``: the one long pause, and the bound on what waits.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 50
FULL_HEAP_EVERY_S = 600.0


class GuiThreadCollector(QObject):
    """Owned by the application; ``stop`` hands collection back to CPython."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS,
                 full_heap_every_s: float = FULL_HEAP_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(parent)
        self.passes = 0  # (tests, diagnostics)
        self.whole_heap_passes = 0
        self._full_heap_every_s = full_heap_every_s
        self._clock = clock
        self._whole_heap_at = clock()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.check)
        gc.disable()
        self._timer.start(interval_ms)

    def check(self) -> None:
        """Nothing until CPython's youngest generation is past its threshold
        (read each time, as a hub may change it: plugins/local/hub/heap.py);
        then one pass over what is not frozen, and freeze the survivors."""
        if gc.get_count()[0] <= gc.get_threshold()[0]:
            return
        if self._clock() - self._whole_heap_at >= self._full_heap_every_s:
            gc.unfreeze()
            self._whole_heap_at = self._clock()
            self.whole_heap_passes += 1
        gc.collect()
        gc.freeze()
        self.passes += 1

    def stop(self) -> None:
        self._timer.stop()
        gc.unfreeze()
        gc.enable()


def install(parent: QObject) -> GuiThreadCollector:
    """One collector for the process, kept as ``parent``'s child."""
    existing = parent.findChild(GuiThreadCollector)
    return existing if isinstance(existing, GuiThreadCollector) else GuiThreadCollector(parent)
