"""The hub's heartbeat as a console reads it, and whose loss a seq gap is."""

from __future__ import annotations

import pytest

from core.model import LinkStats
from plugins.local.hub.downtime import MARGIN_MS, HubDowntime
from plugins.local.hub.heartbeat import (
    HeartbeatError,
    HubBeat,
    HubPresence,
    decode_beat,
    last_will,
)


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_heartbeat_round_trips_and_hostile_ones_are_refused_with_a_reason() -> None:
    beat = HubBeat("online", "hub-1", 5, 1, "0.1.0", 5.0, "connected", 12.5, 80.0, 3, 0, 7,
                   ("database unavailable for 4 s",))
    assert decode_beat(beat.encode()) == beat
    assert decode_beat(last_will("hub-1", 1).encode()).reason == "connection lost"
    for bad, why in ((b"[1]", "object"), (b"{", "not JSON"), (b'{"state":"up"}', "state"),
                     (b'{"state":"online","messages_per_s":1e999}', "finite"),
                     (b'{"state":"online","ts":-1}', "epoch"),
                     (b'{"state":"online","degraded":"x"}', "list"),
                     (b"[" * 100_000, "bytes")):
        with pytest.raises(HeartbeatError, match=why):
            decode_beat(bad)


def test_presence_goes_silent_after_three_missed_beats_and_comes_back() -> None:
    clock = Clock()
    presence = HubPresence(clock)
    assert presence.heard(HubBeat("online", "hub-1", interval_s=5.0))
    clock.now += 14.0
    assert not presence.check() and presence.state == "online"
    clock.now += 2.0
    assert presence.check() and presence.state == "silent"
    assert presence.event("connected").hub == "silent"
    assert presence.heard(HubBeat("online", "hub-1")) and presence.state == "online"
    assert presence.heard(last_will("hub-1", 1)) and presence.state == "offline"
    assert "connection lost" in presence.event("connected").hub_detail


def test_a_console_that_never_hears_a_hub_says_so() -> None:
    clock = Clock()
    presence = HubPresence(clock)
    clock.now += 16.0
    assert presence.check() and "no hub has reported" in presence.detail()


def test_only_a_gap_spanning_the_hubs_absence_is_the_hubs_loss() -> None:
    clock = Clock(100.0)
    downtime = HubDowntime("hub-1", None, clock)
    downtime.load([LinkStats("d", last_seq=9, received=10, last_ts_ms=95_000)])
    downtime.link_state("disconnected")  # at 100 s
    clock.now = 130.0
    downtime.link_state("connected")
    assert downtime.outages() == ((100_000, 130_000),)
    # a gap across the outage: the hub's
    across = LinkStats("d", last_seq=80, received=40, lost=30, last_ts_ms=135_000)
    [fixed] = downtime.attribute([across])
    assert (fixed.lost, fixed.hub_lost) == (0, 30)
    # a later gap while the hub was up: the device's
    later = LinkStats("d", last_seq=90, received=45, lost=5, hub_lost=30,
                      last_ts_ms=140_000 + MARGIN_MS)
    [fixed] = downtime.attribute([later])
    assert (fixed.lost, fixed.hub_lost) == (5, 30)
    assert downtime.hub_lost == 30
