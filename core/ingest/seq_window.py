"""The seqs a device's boot counts missing, as a sorted array of 8-byte ints;
and the seqs it received last, as a ring of them.

A ``set[int]`` costs about 70 bytes a seq (its hash table and an int object
each) and grows in steps. Under sustained shedding every device's window
fills at once (the hub drops whole runs of each device's messages), so the
hub's memory rose by 80-120 MB in one step at 2,000 devices, 80 s into an
overload whose target is flat memory (docs/benchmarks.md, "Overload").
Sorted, the same window is 8 bytes a seq, and the oldest seq (what the window
drops first) is the first element instead of a scan of the set.

The last seqs received (``RecentSeqs``, 128 of them) were a ``deque`` of int
objects: 28 bytes an int plus the deque's blocks, 5.3 KB a device of the 6.3
KB its whole accounting cost (tracemalloc, 1,000 devices), so 53 MB at 10,000
devices, each int allocated at its own moment and pinning memory among the
inbox's short-lived objects. A ring of 8-byte ints is 1 KB; asking it is a
scan of 128 ints, paid only when a seq went back (a repeat or a late one).

New gaps lie past every seq already missing (they follow the newest seq), so
adding is an append; a late arrival removes one element (a bisect and a
memmove of at most ``MISSING_WINDOW`` elements).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator


class MissingSeqs:
    __slots__ = ("_seqs",)

    def __init__(self) -> None:
        self._seqs = array("q")

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int):
            return False
        seqs = self._seqs
        i = bisect_left(seqs, seq)
        return i < len(seqs) and seqs[i] == seq

    def __len__(self) -> int:
        return len(self._seqs)

    def __iter__(self) -> Iterator[int]:
        return iter(self._seqs)

    def add_range(self, start: int, stop: int) -> None:
        """Seqs ``start`` .. ``stop - 1`` are missing."""
        if start >= stop:
            return
        seqs = self._seqs
        if not seqs or start > seqs[-1]:
            seqs.extend(range(start, stop))
            return
        self._seqs = array("q", sorted(set(seqs).union(range(start, stop))))

    def discard(self, seq: int) -> bool:
        """Remove ``seq``; whether it was there."""
        seqs = self._seqs
        i = bisect_left(seqs, seq)
        if i < len(seqs) and seqs[i] == seq:
            del seqs[i]
            return True
        return False

    def drop_oldest(self, count: int) -> int:
        """Forget the ``count`` lowest seqs; returns the highest one dropped."""
        seqs = self._seqs
        highest = seqs[count - 1]
        del seqs[:count]
        return highest

    def clear(self) -> None:
        del self._seqs[:]


# No seq is negative (the protocol refuses it): an empty slot never matches.
_EMPTY = -1


class RecentSeqs:
    """The last ``size`` seqs received, for telling a repeat from new data."""

    __slots__ = ("_mask", "_next", "_seqs")

    def __init__(self, size: int) -> None:
        if size <= 0 or size & (size - 1):
            raise ValueError(f"the recent window's size must be a power of two, not {size}")
        self._seqs = array("q", [_EMPTY]) * size
        self._next = 0
        self._mask = size - 1

    def append(self, seq: int) -> None:
        """Remember ``seq``, forgetting the oldest once full (every message: kept cheap)."""
        i = self._next
        self._seqs[i] = seq
        self._next = (i + 1) & self._mask

    def __contains__(self, seq: object) -> bool:
        return isinstance(seq, int) and seq >= 0 and seq in self._seqs

    def __iter__(self) -> Iterator[int]:
        """Oldest first."""
        seqs, start = self._seqs, self._next
        return (s for s in (*seqs[start:], *seqs[:start]) if s != _EMPTY)
