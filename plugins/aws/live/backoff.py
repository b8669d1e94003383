"""Jittered exponential backoff between reconnection attempts.

"Equal jitter": the n-th delay is half of ``min(cap, base * 2**n)`` plus a
random part of the other half. The fixed half keeps one console from
hammering a broker that is down; the random half spreads a room full of
consoles that all lost the link at the same instant (a broker restart), so
they do not all come back in the same second.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, base_s: float = 1.0, cap_s: float = 60.0,
                 rng: random.Random | None = None) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError(f"backoff needs 0 < base ({base_s}) <= cap ({cap_s})")
        self.base_s = base_s
        self.cap_s = cap_s
        self._rng = rng or random.Random()
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = float(min(self.cap_s, self.base_s * 2.0 ** min(self.attempt, 30)))
        self.attempt += 1
        return ceiling / 2 + float(self._rng.uniform(0.0, ceiling / 2))

    def reset(self) -> None:
        self.attempt = 0
