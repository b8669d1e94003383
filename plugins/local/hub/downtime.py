"""When the hub was away, and whose loss a seq gap is.

A gap in a device's ``seq`` used to be booked as the device's loss whatever
caused it: a hub stopped for 20 s showed "pump-00001 lost 4 (3.5%)" although
the device had sent everything. The broker now queues telemetry for the hub's
persistent session (simulator.broker_queue), so a restart normally leaves no
gap at all; what still goes missing while the hub is down or disconnected
(the broker's queue was full, or a ``kill -9`` took the hub's memory with it)
is the hub's loss: ``LinkStats.hub_lost``, not ``lost``.

A gap is the hub's when the readings around it (device clock) span a period
the hub was away, widened by ``MARGIN_MS`` for clocks that disagree a little.
The hub decides per written batch and device, so a device's own loss in the
very batch that spans an outage is booked to the hub too; that batch is the
first after a restart or reconnect. The periods come from link state changes
while running and, across a restart, from "alive at" (written every few
seconds, and at a clean stop) to the next connect.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from core.model import LinkStats
from core.store.hub_state import HubSessionState, Outage, SqlHubStateStore

log = logging.getLogger(__name__)

MARGIN_MS = 2_000
MAX_OUTAGES = 64
KEEP_MS = 7 * 24 * 3600 * 1000
ALIVE_EVERY_S = 5.0


class HubDowntime:
    """Periods the hub was down or disconnected; ``store`` None keeps them in
    memory only (a hub without a persistent session starts afresh anyway)."""

    def __init__(self, client_id: str, store: SqlHubStateStore | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.client_id = client_id
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._outages: tuple[Outage, ...] = ()
        self._away_since: int | None = None
        # device -> (lost, newest reading ts) as last attributed
        self._seen: dict[str, tuple[int, int | None]] = {}
        self.hub_lost = 0

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # ------------------------------------------------------------------ periods
    def load(self, stats: list[LinkStats]) -> None:
        """At start: the previous run's outages, and the one running since it
        was last alive (closed when the link connects)."""
        for s in stats:
            self._seen[s.device_id] = (s.lost, s.last_ts_ms)
        if self._store is None:
            return
        state = self._store.get(self.client_id)
        if state is None:
            return
        with self._lock:
            self._outages = state.outages
            if state.alive_at_ms is not None:
                self._away_since = state.alive_at_ms

    def link_state(self, state: str) -> None:
        """From the MQTT link: an outage starts when it drops and ends when it is back."""
        now = self._now_ms()
        with self._lock:
            if state == "connected":
                if self._away_since is not None:
                    start = min(self._away_since, now)
                    self._outages = _trim((*self._outages, (start, now)), now)
                    log.info("hub was away for %.1f s; seq gaps in that period are the "
                             "hub's loss", (now - start) / 1000)
                    self._away_since = None
            elif self._away_since is None:
                self._away_since = now

    def overlaps(self, first_ms: int, last_ms: int) -> bool:
        """Whether readings dated ``first_ms`` .. ``last_ms`` span a period the hub was away."""
        with self._lock:
            outages, away = self._outages, self._away_since
        if away is not None and last_ms >= away - MARGIN_MS:
            return True
        return any(first_ms <= end + MARGIN_MS and last_ms >= start - MARGIN_MS
                   for start, end in outages)

    def outages(self) -> tuple[Outage, ...]:
        with self._lock:
            return self._outages

    # ------------------------------------------------------------------ loss
    def attribute(self, stats: list[LinkStats]) -> list[LinkStats]:
        """The batch's new link statistics with loss over an outage moved to
        ``hub_lost``; unchanged objects when there is nothing to move."""
        out = []
        for s in stats:
            before = self._seen.get(s.device_id)
            fixed = s
            if before is not None and s.lost != before[0]:
                lost_before, ts_before = before
                grown = s.lost - lost_before
                if (grown > 0 and ts_before is not None and s.last_ts_ms is not None
                        and self.overlaps(min(ts_before, s.last_ts_ms),
                                          max(ts_before, s.last_ts_ms))):
                    fixed = replace(s, lost=lost_before, hub_lost=s.hub_lost + grown)
                    self.hub_lost += grown
                elif grown < 0 and s.lost < 0 and s.hub_lost > 0:
                    # a gap booked to the hub filled late (a reordered delivery)
                    give = min(-s.lost, s.hub_lost)
                    fixed = replace(s, lost=s.lost + give, hub_lost=s.hub_lost - give)
            self._seen[s.device_id] = (fixed.lost, fixed.last_ts_ms)
            out.append(fixed)
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, *, alive: bool = True) -> None:
        """Writes "alive now" (``alive``) and the outages; raises what the store raises."""
        if self._store is None:
            return
        now = self._now_ms()
        with self._lock:
            outages = _trim(self._outages, now)
            self._outages = outages
            alive_at = now if alive and self._away_since is None else self._away_since
        self._store.put(HubSessionState(self.client_id, alive_at, outages))


def _trim(outages: tuple[Outage, ...], now_ms: int) -> tuple[Outage, ...]:
    kept = [o for o in outages if o[1] >= now_ms - KEEP_MS]
    return tuple(kept[-MAX_OUTAGES:])
