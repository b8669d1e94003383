"""Shared helpers for the simulator unit tests (pure, no I/O)."""

from __future__ import annotations

import numpy as np

# 2023-11-13 00:00:00 UTC, a Monday: day and week boundaries are easy to reason about.
MONDAY = 1_699_833_600.0


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)
