"""The hub keeps the collector's full passes off its writer (plugins/local/hub/heap.py):
what survives a settle is frozen, garbage is still collected, and stopping hands
everything back."""

from __future__ import annotations

import gc
import weakref

import pytest

from plugins.local.hub.heap import HeapSettler


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


@pytest.fixture(autouse=True)
def _unfrozen():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_settle_freezes_survivors_and_collects_garbage_cycles_first() -> None:
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage
    kept = Node()
    settler = HeapSettler()
    settler.settle()
    assert gone() is None  # collected, not frozen for ever
    assert gc.get_freeze_count() > 0 and kept.me is kept
    # full passes skip the frozen objects: what is tracked outside them is small
    assert len(gc.get_objects()) < gc.get_freeze_count()


def test_a_cycle_that_dies_while_frozen_goes_at_the_next_settle_or_release() -> None:
    settler = HeapSettler()
    node = Node()
    settler.settle()
    gone = weakref.ref(node)
    del node
    gc.collect()
    assert gone() is not None  # frozen: the collector does not look at it
    settler.settle()
    assert gone() is None
    late = Node()
    settler.settle()
    gone = weakref.ref(late)
    del late
    settler.release()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gone() is None


def test_settles_again_only_after_its_interval() -> None:
    now = [100.0]
    settler = HeapSettler(every_s=60.0, clock=lambda: now[0])
    assert settler.maybe_settle() and settler.settled == 1
    now[0] += 59.0
    assert not settler.maybe_settle()
    now[0] += 1.0
    assert settler.maybe_settle() and settler.settled == 2


def test_full_passes_are_the_settlers_alone_until_release() -> None:
    """A batch in flight survives young collections; CPython's own full passes
    then walked the whole heap twice a second. While settled only the settle
    runs one; the young generations keep their thresholds."""
    before = gc.get_threshold()
    settler = HeapSettler()
    settler.settle()
    young, middle, oldest = gc.get_threshold()
    assert (young, middle) == before[:2] and oldest > 1_000_000
    full_passes = gc.get_stats()[2]["collections"]
    junk = [[Node() for _ in range(1000)] for _ in range(200)]  # 200,000 long-lived
    del junk
    assert gc.get_stats()[2]["collections"] == full_passes
    settler.settle()  # the settle itself is a full pass
    assert gc.get_stats()[2]["collections"] == full_passes + 1
    settler.release()
    assert gc.get_threshold() == before
