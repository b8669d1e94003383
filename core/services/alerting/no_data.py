"""``no_data``: a device in scope that has gone quiet (or offline) for N minutes.

Silence cannot be seen in readings, so this type works on the engine's
periodic ``tick(now)``. The last-seen time is the newest of what this
evaluator observed and ``device.last_seen`` from the registry (only when no
``metric`` is given: the registry's time covers any metric). A device never
heard from is measured from the first tick that saw it, so a fleet imported
today does not raise thousands of alerts at once for "silent since forever".
``offline=true`` also fires when the registry has shown the device offline
for N minutes (counted from the first tick that saw it offline).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.model import Device, DeviceStatus, Reading
from core.services.alerting.evaluator import Change, Sample, time_ms, time_of
from core.services.alerting.params import Params

PARAMETERS = ("minutes", "metric", "offline")


@dataclass(slots=True)
class _State:
    watching_since: datetime
    last_seen: datetime | None = None
    offline_since: datetime | None = None
    active: bool = False


class NoDataEvaluator:
    def __init__(self, params: Mapping[str, Any]) -> None:
        p = Params(params, PARAMETERS)
        self.minutes = p.number("minutes", positive=True)
        self.metric = p.metric(required=False)
        self.offline = p.flag("offline", True)
        self.limit = timedelta(minutes=self.minutes)
        self._states: dict[str, _State] = {}

    def _state(self, device_id: str, now: datetime) -> _State:
        state = self._states.get(device_id)  # not setdefault: no new state per message
        if state is None:
            state = self._states[device_id] = _State(watching_since=now)
        return state

    def observe(self, device: Device, readings: Sequence[Reading], now: datetime) -> list[Change]:
        newest = max((r.ts for r in readings if self.metric in (None, r.metric)), default=None)
        return self._heard(device, newest, now)

    def observe_samples(self, device: Device, samples: Sequence[Sample],
                        now: datetime) -> list[Change]:
        """``observe`` on messages (a message without any metric has no reading)."""
        metric = self.metric
        if len(samples) == 1:  # a write batch holds about one message per device
            ts, metrics = samples[0]
            return (self._heard(device, ts, now)
                    if (metrics if metric is None else metric in metrics) else [])
        newest = max((ts for ts, metrics in samples
                      if (metrics if metric is None else metric in metrics)), default=None)
        return self._heard(device, newest, now)

    def _heard(self, device: Device, newest: datetime | None, now: datetime) -> list[Change]:
        if newest is None:
            return []
        state = self._state(device.device_id, now)
        if state.last_seen is None or newest > state.last_seen:
            state.last_seen = newest
        state.offline_since = None  # it just talked to us, whatever the registry says
        if not state.active:
            return []
        state.active = False
        return [Change(False, None, f"{self._what()} received again", newest)]

    def tick(self, device: Device, now: datetime) -> list[Change]:
        state = self._state(device.device_id, now)
        seen = state.last_seen
        if self.metric is None and device.last_seen is not None:
            seen = device.last_seen if seen is None else max(seen, device.last_seen)
        quiet_for = now - (seen or state.watching_since)
        if self.offline and device.status is DeviceStatus.OFFLINE:
            state.offline_since = state.offline_since or now
        else:
            state.offline_since = None
        offline_for = now - state.offline_since if state.offline_since else timedelta(0)
        silent, offline = quiet_for >= self.limit, offline_for >= self.limit
        if (silent or offline) == state.active:
            return []
        state.active = silent or offline
        if not state.active:
            return [Change(False, None, f"{self._what()} received again", now)]
        if silent:
            minutes = quiet_for.total_seconds() / 60
            text = f"no {self._what()} for {minutes:.0f} min (limit {self.minutes:g} min)"
            return [Change(True, round(minutes, 3), text, now)]
        minutes = offline_for.total_seconds() / 60
        return [Change(True, round(minutes, 3),
                       f"device offline for {minutes:.0f} min (limit {self.minutes:g} min)", now)]

    def _what(self) -> str:
        return f"{self.metric} data" if self.metric else "data"

    def assume_active(self, device_id: str, at: datetime) -> None:
        self._state(device_id, at).active = True

    def export_state(self, device_id: str) -> dict[str, Any] | None:
        state = self._states.get(device_id)
        if state is None:
            return None
        return {"watching_since": time_ms(state.watching_since),
                "last_seen": time_ms(state.last_seen),
                "offline_since": time_ms(state.offline_since), "active": state.active}

    def import_state(self, device_id: str, state: Mapping[str, Any] | None) -> None:
        if state is None:
            self._states.pop(device_id, None)
            return
        watching = time_of(state["watching_since"])
        assert watching is not None
        self._states[device_id] = _State(watching, time_of(state["last_seen"]),
                                         time_of(state["offline_since"]), bool(state["active"]))
