"""A clock-time axis for pyqtgraph plots whose x is epoch seconds.

pyqtgraph's DateAxisItem switches to a milliseconds format on short spans
("11.000 12.000 …") and labels an empty plot's 0..1 range as "00.100 …".
People read charts of a fleet in wall-clock time: this axis puts ticks on
round local times (every 1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min, 1, 2,
3, 6, 12 h, 1 day, …) and labels them HH:MM:SS, HH:MM or a date, as the span
needs. A range that is not real time (no data yet) gets no labels at all.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pyqtgraph as pg

STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
           43200, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400)
# Anything before this is not a real timestamp (an empty plot's 0..1 range).
EARLIEST_REAL = 946_684_800.0  # 2000-01-01
LABEL_PX = 80  # room one label needs


def tick_step(span_s: float, width_px: float) -> float:
    """The smallest round step that leaves ``LABEL_PX`` per label."""
    labels = max(1.0, width_px / LABEL_PX)
    for step in STEPS_S:
        if span_s / step <= labels:
            return float(step)
    return float(STEPS_S[-1])


def tick_times(start: float, stop: float, step: float) -> list[float]:
    """Round local times from ``start`` to ``stop`` every ``step`` seconds."""
    if step >= 86400:
        first = datetime.fromtimestamp(start).replace(hour=0, minute=0, second=0,
                                                      microsecond=0).timestamp()
    else:
        offset = time.localtime(start).tm_gmtoff
        first = ((start + offset) // step) * step - offset
    out = []
    t = first
    while t <= stop:
        if t >= start:
            out.append(t)
        t += step
    return out


def time_label(value: float, step: float) -> str:
    moment = datetime.fromtimestamp(value)
    if step >= 86400:
        return moment.strftime("%b %d")
    if step >= 60:
        return moment.strftime("%H:%M")
    return moment.strftime("%H:%M:%S")


class TimeAxis(pg.AxisItem):
    """``min_step_s``: the finest tick a chart wants (60 for a chart in minutes:
    a rate per minute labelled every 5 s reads as a seconds chart)."""

    def __init__(self, orientation: str = "bottom", *, min_step_s: float = 1.0,
                 **kwargs: Any) -> None:
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)
        self.min_step_s = min_step_s

    def tickValues(self, minVal: float, maxVal: float, size: float
                   ) -> list[tuple[float, list[float]]]:
        if maxVal <= minVal or maxVal < EARLIEST_REAL:
            return []
        step = max(tick_step(maxVal - minVal, size), self.min_step_s)
        return [(step, tick_times(minVal, maxVal, step))]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [time_label(v, spacing) for v in values]
