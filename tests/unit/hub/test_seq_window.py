"""The seq windows: the missing seqs answer as a set would, the recent ones as a
deque would, at a fraction of the memory."""

from __future__ import annotations

import json
import random
import tracemalloc
from collections import deque

import pytest

from core.ingest.seq_window import MissingSeqs, RecentSeqs
from core.ingest.sequence import MISSING_WINDOW, RECENT_WINDOW, SequenceTracker, Verdict


def test_it_answers_as_a_set_would_through_random_gaps_arrivals_and_trims():
    rng = random.Random(7)
    window, model = MissingSeqs(), set()
    top = 0
    for _ in range(5_000):
        op = rng.random()
        if op < 0.4:  # a gap past the newest seq
            start = top + rng.randint(1, 3)
            stop = start + rng.randint(1, 40)
            window.add_range(start, stop)
            model.update(range(start, stop))
            top = stop
        elif op < 0.5:  # a range overlapping what is there (a reboot's history)
            start = rng.randint(0, top + 1)
            stop = start + rng.randint(0, 30)
            window.add_range(start, stop)
            model.update(range(start, stop))
            top = max(top, stop)
        elif op < 0.9:  # a late arrival, missing or not
            seq = rng.randint(0, top + 2)
            assert window.discard(seq) == (seq in model)
            model.discard(seq)
        elif model:  # the window keeps the newest
            count = rng.randint(1, len(model))
            dropped = sorted(model)[:count]
            assert window.drop_oldest(count) == dropped[-1]
            model.difference_update(dropped)
        probe = rng.randint(-2, top + 2)
        assert (probe in window) == (probe in model)
        assert list(window) == sorted(model) and len(window) == len(model)
    window.clear()
    assert len(window) == 0 and 3 not in window and "3" not in window


def test_a_device_whose_window_is_full_costs_a_few_kilobytes_not_tens():
    tracker = SequenceTracker()
    tracker.track("dev", 0)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        seq = 0
        for _ in range(MISSING_WINDOW + 100):  # every other message shed: gaps of one
            seq += 2
            assert tracker.track("dev", seq).verdict is Verdict.GAP
        grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(
            before, "filename") if s.size_diff > 0)
    finally:
        tracemalloc.stop()
    # 1,024 missing seqs and the recent window: about 8 KB sorted; a set of
    # ints took about 70 KB
    assert grown < 20_000, grown
    # and the window still tells a late arrival from a repeat
    assert tracker.track("dev", seq - 1).verdict is Verdict.REORDERED
    assert tracker.track("dev", seq - 1).verdict is Verdict.DUPLICATE
    assert tracker.track("dev", 1).verdict is Verdict.OUT_OF_ORDER  # trimmed long ago


def test_the_recent_ring_answers_as_a_bounded_deque_would():
    rng = random.Random(11)
    ring, model = RecentSeqs(16), deque(maxlen=16)
    assert 0 not in ring and list(ring) == []
    for _ in range(3_000):
        seq = rng.randint(0, 60)
        ring.append(seq)
        model.append(seq)
        probe = rng.randint(-3, 63)
        assert (probe in ring) == (probe in model)
        assert list(ring) == list(model)
    assert "3" not in ring and -1 not in ring
    with pytest.raises(ValueError, match="power of two"):
        RecentSeqs(100)


def test_a_steady_device_costs_about_two_kilobytes_of_accounting():
    """The last 128 seqs were a deque of int objects: 5.3 KB of a device's 6.3
    KB, 53 MB at 10,000 devices; a ring of 8-byte ints is 1 KB."""
    tracker = SequenceTracker()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for d in range(500):
            for seq in range(1_000, 1_000 + 2 * RECENT_WINDOW):
                # each seq its own int object, as a decoded message's is
                tracker.track(f"dev-{d:05d}", json.loads(str(seq)))
        grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(
            before, "filename") if s.size_diff > 0)
    finally:
        tracemalloc.stop()
    assert grown / 500 < 3_000, grown / 500
    assert tracker.track("dev-00007", 1_000 + 2 * RECENT_WINDOW - 5).verdict is Verdict.DUPLICATE
