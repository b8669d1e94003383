"""Per-device ``seq`` accounting: the only way to tell loss from silence.

Each telemetry message carries a per-device counter. A jump forward is loss,
a repeat is a duplicate, a step back is either a late (reordered) message or
a reboot — told apart by ``uptime`` going backwards or ``seq`` restarting at 0.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

RECENT_WINDOW = 128
MISSING_WINDOW = 1024


class Verdict(enum.StrEnum):
    FIRST = "first"
    NEXT = "next"
    GAP = "gap"              # accepted; earlier seqs are counted lost
    REBOOT = "reboot"        # accepted; the counter restarted
    DUPLICATE = "duplicate"  # rejected
    OUT_OF_ORDER = "out_of_order"  # rejected (arrived after a later seq)

    @property
    def accepted(self) -> bool:
        return self not in (Verdict.DUPLICATE, Verdict.OUT_OF_ORDER)


@dataclass
class _DeviceSeq:
    last: int
    uptime: int | None
    recent: deque[int] = field(default_factory=lambda: deque(maxlen=RECENT_WINDOW))
    missing: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    lost_delta: int = 0  # change to the device's lost count (negative when a gap fills late)


class SequenceTracker:
    def __init__(self) -> None:
        self._devices: dict[str, _DeviceSeq] = {}

    def seed(self, device_id: str, last_seq: int | None) -> None:
        """Continue from what a previous hub run persisted."""
        if last_seq is not None and device_id not in self._devices:
            self._devices[device_id] = _DeviceSeq(last_seq, None)
            self._devices[device_id].recent.append(last_seq)

    def track(self, device_id: str, seq: int, uptime: int | None = None) -> Outcome:
        state = self._devices.get(device_id)
        if state is None:
            state = self._devices[device_id] = _DeviceSeq(seq, uptime)
            state.recent.append(seq)
            return Outcome(Verdict.FIRST)
        if seq == state.last + 1:
            return self._accept(state, seq, uptime, Outcome(Verdict.NEXT))
        if seq > state.last + 1:
            gap = seq - state.last - 1
            if gap <= MISSING_WINDOW:
                state.missing.update(range(state.last + 1, seq))
                while len(state.missing) > MISSING_WINDOW:
                    state.missing.discard(min(state.missing))
            return self._accept(state, seq, uptime, Outcome(Verdict.GAP, gap))
        # seq <= last
        if seq in state.recent:
            return Outcome(Verdict.DUPLICATE)
        if seq in state.missing:
            state.missing.discard(seq)
            state.recent.append(seq)
            return Outcome(Verdict.OUT_OF_ORDER, -1)
        rebooted = seq == 0 or (
            uptime is not None and state.uptime is not None and uptime < state.uptime
        )
        if rebooted:
            fresh = _DeviceSeq(seq, uptime)
            fresh.recent.append(seq)
            self._devices[device_id] = fresh
            return Outcome(Verdict.REBOOT)
        return Outcome(Verdict.OUT_OF_ORDER)

    @staticmethod
    def _accept(state: _DeviceSeq, seq: int, uptime: int | None, outcome: Outcome) -> Outcome:
        state.last = seq
        state.uptime = uptime if uptime is not None else state.uptime
        state.recent.append(seq)
        return outcome

    def last_seq(self, device_id: str) -> int | None:
        state = self._devices.get(device_id)
        return None if state is None else state.last
