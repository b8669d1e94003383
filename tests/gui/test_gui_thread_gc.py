"""Cycles are collected on the GUI thread only (console/gui_thread_gc.py): a
worker that allocates must not run the destructors of Qt objects in garbage
cycles, which crashed the history bench with SIGSEGV every run."""

from __future__ import annotations

import gc
import threading
from typing import Any

from console.gui_thread_gc import GuiThreadCollector
from plugins.local.hub.heap import HeapSettler


class Cycle:
    finalized_on: list[str] = []

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        Cycle.finalized_on.append(threading.current_thread().name)


def _worker_makes_garbage() -> None:
    for _ in range(50):
        Cycle()
    junk = [[object()] for _ in range(100_000)]  # allocations past every threshold
    del junk


def test_garbage_made_on_a_worker_is_collected_on_the_gui_thread(qtbot: Any) -> None:
    Cycle.finalized_on.clear()
    collector = GuiThreadCollector(interval_ms=20)
    try:
        assert not gc.isenabled()
        worker = threading.Thread(target=_worker_makes_garbage, name="store-read-pool")
        worker.start()
        worker.join()
        # automatic collection would have run on the worker in those allocations
        assert Cycle.finalized_on == []
        kept: list[Any] = []

        def collected_on_timer() -> bool:
            kept.append([[] for _ in range(1000)])  # the GUI thread allocates too
            return collector.passes >= 1

        qtbot.waitUntil(collected_on_timer, timeout=5000)
        gc.collect()  # what is left of the worker's cycles, here
        assert len(Cycle.finalized_on) == 50
        assert set(Cycle.finalized_on) == {threading.main_thread().name}
    finally:
        collector.stop()
    assert gc.isenabled()


def test_each_pass_scans_what_is_new_and_the_whole_heap_waits_for_its_period(
        qtbot: Any) -> None:
    """A pass freezes its survivors, so the next scans only newer objects; a
    cycle that outlived a pass is freed at the whole heap's pass."""
    Cycle.finalized_on.clear()
    now = [0.0]
    collector = GuiThreadCollector(interval_ms=60_000, full_heap_every_s=600.0,
                                   clock=lambda: now[0])  # passes run by hand here

    kept: list[Any] = []

    def a_pass() -> None:
        kept.append([{} for _ in range(gc.get_threshold()[0] + 10)])  # past its threshold
        collector.check()

    try:
        short_lived = Cycle()
        del short_lived
        outlives = Cycle()
        a_pass()
        assert Cycle.finalized_on == [threading.main_thread().name]  # died within the pass
        frozen = gc.get_freeze_count()
        assert frozen > 0  # the survivors, skipped from now on
        del outlives  # now garbage, but frozen with the rest
        a_pass()
        # still frozen (the count may dip by objects freed by refcount meanwhile):
        # the cycle that outlived the first pass waits for the whole heap's turn
        assert len(Cycle.finalized_on) == 1 and gc.get_freeze_count() > frozen // 2
        now[0] = 601.0  # the whole heap's turn
        a_pass()
        assert len(Cycle.finalized_on) == 2 and collector.whole_heap_passes == 1
        assert collector.passes == 3
    finally:
        collector.stop()
    assert gc.get_freeze_count() == 0 and gc.isenabled()  # all handed back


def test_the_hubs_settler_leaves_collection_to_the_gui_thread(qtbot: Any) -> None:
    """An in-process hub settles its heap on its writer thread; while the console
    collects on the GUI thread that full pass would run Qt destructors there."""
    Cycle.finalized_on.clear()
    collector = GuiThreadCollector(interval_ms=60_000)  # no timer pass in this test
    try:
        settler = HeapSettler()
        Cycle()
        done = threading.Event()
        threading.Thread(target=lambda: (settler.settle(), done.set()),
                         name="smartiot-hub-writer").start()
        assert done.wait(5)
        assert Cycle.finalized_on == [] and settler.settled == 0
        assert gc.get_freeze_count() == 0
    finally:
        collector.stop()
        gc.collect()
