"""``threshold``: a metric above (or below) a limit, with hysteresis and a
minimum duration.

Hysteresis exists so a value hovering at the limit raises one alert, not one
per reading: once fired, the condition clears only when the value is strictly
past ``limit - hysteresis`` (``op=above``) or ``limit + hysteresis``
(``op=below``). ``min_duration_s`` filters spikes: the limit must be breached
by every reading for that long (first to latest breaching reading) before the
alert fires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.model import Device, Reading
from core.services.alerting.evaluator import Change, Sample, time_ms, time_of
from core.services.alerting.params import Params, fmt

PARAMETERS = ("metric", "op", "limit", "hysteresis", "min_duration_s")


@dataclass(slots=True)
class _State:
    active: bool = False
    breach_since: datetime | None = None
    last_ts: datetime | None = None


class ThresholdEvaluator:
    def __init__(self, params: Mapping[str, Any]) -> None:
        p = Params(params, PARAMETERS)
        self.metric: str = p.metric() or ""
        self.op = p.choice("op", ("above", "below"), "above")
        self.limit = p.number("limit")
        self.hysteresis = p.number("hysteresis", default=0.0, minimum=0.0)
        self.min_duration = timedelta(seconds=p.number("min_duration_s", default=0.0,
                                                       minimum=0.0))
        self._states: dict[str, _State] = {}

    @property
    def clear_level(self) -> float:
        return self.limit - self.hysteresis if self.op == "above" else self.limit + self.hysteresis

    def _breached(self, value: float) -> bool:
        return value > self.limit if self.op == "above" else value < self.limit

    def _cleared(self, value: float) -> bool:
        return value < self.clear_level if self.op == "above" else value > self.clear_level

    def observe(self, device: Device, readings: Sequence[Reading], now: datetime) -> list[Change]:
        changes: list[Change] = []
        state: _State | None = None
        for reading in readings:
            if reading.metric != self.metric:
                continue
            if state is None:
                state = self._states.setdefault(device.device_id, _State())
            # A late reading must not rewrite a decision already taken on newer data.
            if state.last_ts is not None and reading.ts < state.last_ts:
                continue
            state.last_ts = reading.ts
            change = self._step(state, reading.value, reading.ts)
            if change is not None:
                changes.append(change)
        return changes

    def observe_samples(self, device: Device, samples: Sequence[Sample],
                        now: datetime) -> list[Change]:
        """``observe`` on messages: the rule's metric looked up in each."""
        changes: list[Change] = []
        state: _State | None = None
        metric = self.metric
        for ts, metrics in samples:
            value = metrics.get(metric)
            if value is None:
                continue
            if state is None:
                state = self._states.get(device.device_id)
                if state is None:
                    state = self._states[device.device_id] = _State()
            last_ts = state.last_ts
            if last_ts is not None and ts < last_ts:
                continue
            state.last_ts = ts
            # the common case, inline: not firing, not breached (what _step does then)
            if not state.active and not (value > self.limit if self.op == "above"
                                         else value < self.limit):
                state.breach_since = None
                continue
            change = self._step(state, value, ts)
            if change is not None:
                changes.append(change)
        return changes

    def _step(self, state: _State, value: float, ts: datetime) -> Change | None:
        if state.active:
            if self._cleared(value):
                state.active, state.breach_since = False, None
                return Change(False, value, f"{self.metric} {fmt(value)} back "
                              f"{'below' if self.op == 'above' else 'above'} "
                              f"{fmt(self.clear_level)}", ts)
            return None
        if not self._breached(value):
            state.breach_since = None
            return None
        if state.breach_since is None:
            state.breach_since = ts
        held = ts - state.breach_since
        if held < self.min_duration:
            return None
        state.active = True
        suffix = f" for {held.total_seconds():g} s" if self.min_duration else ""
        return Change(True, value, f"{self.metric} {fmt(value)} {self.op} limit "
                      f"{fmt(self.limit)}{suffix}", ts)

    def tick(self, device: Device, now: datetime) -> list[Change]:
        return []

    def assume_active(self, device_id: str, at: datetime) -> None:
        self._states.setdefault(device_id, _State()).active = True

    def export_state(self, device_id: str) -> dict[str, Any] | None:
        state = self._states.get(device_id)
        if state is None:
            return None
        return {"active": state.active, "breach_since": time_ms(state.breach_since),
                "last_ts": time_ms(state.last_ts)}

    def import_state(self, device_id: str, state: Mapping[str, Any] | None) -> None:
        if state is None:
            self._states.pop(device_id, None)
            return
        self._states[device_id] = _State(bool(state["active"]), time_of(state["breach_since"]),
                                         time_of(state["last_ts"]))
