"""The missing-seq window: the same answers as a set, at a tenth of the memory."""

from __future__ import annotations

import random
import tracemalloc

from core.ingest.seq_window import MissingSeqs
from core.ingest.sequence import MISSING_WINDOW, SequenceTracker, Verdict


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
