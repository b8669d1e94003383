"""StoreHealth: how the hub knows the database is away, and for how long."""

from __future__ import annotations

from plugins.local.hub.hub import StoreHealth


def test_an_outage_is_counted_before_anyone_can_see_it_ended() -> None:
    """`smartiot hub` prints "recovered" and a status line as soon as the database is
    available again; that line must already count the outage (a fresh-clone chaos
    run printed it with none)."""
    now = [100.0]
    health = StoreHealth(clock=lambda: now[0])
    health.failed("telemetry", OSError("database is locked"))
    now[0] = 121.0
    booked: list[tuple[float, bool]] = []
    assert health.recovered(lambda lasted: booked.append((lasted, health.down))) == 21.0
    assert booked == [(21.0, True)]  # counted while still down for every reader
    assert not health.down and health.unavailable_for() is None
    assert health.recovered(lambda lasted: booked.append((lasted, health.down))) is None
    assert booked == [(21.0, True)]  # no outage, nothing counted
