"""``rate_of_change``: a metric changing faster than ``max_per_minute``.

The rate is measured across the readings of the last ``window_s`` seconds
(oldest to newest in the window), not between neighbours, so one noisy sample
does not fire the rule. ``mode=absolute`` compares the size of the change;
``mode=signed`` watches one direction: a positive maximum fires on rises
faster than it, a negative one on falls faster than it. Fewer than two
readings in the window leave the condition as it was (no data is not "fine").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.errors import ValidationError
from core.model import Device, Reading
from core.services.alerting.evaluator import Change, Sample, time_ms, time_of
from core.services.alerting.params import Params, fmt

PARAMETERS = ("metric", "max_per_minute", "window_s", "mode")


@dataclass(slots=True)
class _State:
    window: deque[tuple[datetime, float]] = field(default_factory=deque)
    active: bool = False


class RateOfChangeEvaluator:
    def __init__(self, params: Mapping[str, Any]) -> None:
        p = Params(params, PARAMETERS)
        self.metric: str = p.metric() or ""
        self.mode = p.choice("mode", ("absolute", "signed"), "absolute")
        self.max_per_minute = p.number("max_per_minute")
        if self.mode == "absolute" and self.max_per_minute <= 0:
            raise ValidationError(
                f"parameter 'max_per_minute' must be greater than 0 in absolute mode, got "
                f"{params.get('max_per_minute')!r} (use mode=signed to watch falls)"
            )
        if self.max_per_minute == 0:
            raise ValidationError("parameter 'max_per_minute' must not be 0")
        self.window = timedelta(seconds=p.number("window_s", default=60.0, positive=True))
        self._states: dict[str, _State] = {}

    def _exceeded(self, rate: float) -> bool:
        if self.mode == "absolute":
            return abs(rate) > self.max_per_minute
        return rate > self.max_per_minute if self.max_per_minute > 0 else rate < self.max_per_minute

    def observe(self, device: Device, readings: Sequence[Reading], now: datetime) -> list[Change]:
        changes: list[Change] = []
        for reading in readings:
            if reading.metric == self.metric:
                self._step(device.device_id, reading.ts, reading.value, changes)
        return changes

    def observe_samples(self, device: Device, samples: Sequence[Sample],
                        now: datetime) -> list[Change]:
        """``observe`` on messages: the rule's metric looked up in each."""
        changes: list[Change] = []
        metric = self.metric
        for ts, metrics in samples:
            value = metrics.get(metric)
            if value is not None:
                self._step(device.device_id, ts, value, changes)
        return changes

    def _step(self, device_id: str, ts: datetime, value: float, changes: list[Change]) -> None:
        state = self._states.setdefault(device_id, _State())
        if state.window and ts <= state.window[-1][0]:
            return  # late or duplicate: the window is time-ordered
        state.window.append((ts, value))
        while state.window[0][0] < ts - self.window:
            state.window.popleft()
        if len(state.window) < 2:
            return
        (t0, v0), (t1, v1) = state.window[0], state.window[-1]
        rate = (v1 - v0) / (t1 - t0).total_seconds() * 60.0
        exceeded = self._exceeded(rate)
        if exceeded == state.active:
            return
        state.active = exceeded
        direction = "rising" if rate >= 0 else "falling"
        text = (f"{self.metric} {direction} {fmt(abs(rate))}/min over "
                f"{(t1 - t0).total_seconds():g} s (max {fmt(self.max_per_minute)}/min)")
        if not exceeded:
            text = f"{self.metric} rate back to {fmt(rate)}/min"
        changes.append(Change(exceeded, rate, text, ts))

    def tick(self, device: Device, now: datetime) -> list[Change]:
        return []

    def assume_active(self, device_id: str, at: datetime) -> None:
        self._states.setdefault(device_id, _State()).active = True

    def export_state(self, device_id: str) -> dict[str, Any] | None:
        state = self._states.get(device_id)
        if state is None:
            return None
        return {"active": state.active,
                "window": [[time_ms(ts), value] for ts, value in state.window]}

    def import_state(self, device_id: str, state: Mapping[str, Any] | None) -> None:
        if state is None:
            self._states.pop(device_id, None)
            return
        window: deque[tuple[datetime, float]] = deque()
        for ts_ms, value in state["window"]:
            at = time_of(ts_ms)
            assert at is not None
            window.append((at, float(value)))
        self._states[device_id] = _State(window, bool(state["active"]))
