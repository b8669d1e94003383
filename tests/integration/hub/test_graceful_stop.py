"""A graceful stop stores the inbox before the hub goes (finding 6: Ctrl+C with
a backlog lost 35,922 readings in a benchmark run). The backlog is built the
real way: the SQLite file's write lock is held by another connection while a
simulated fleet publishes QoS 0 (which only the hub's memory holds), then the
fleet stops, the lock is released and the hub is stopped at once."""

from __future__ import annotations

import time
from pathlib import Path

from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.hub import Hub
from simulator.api import RunningFleet
from simulator.faults import FaultPlan
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.chaos.rig import PersistentMosquitto, Witness, sqlite_write_lock, stored_keys
from tests.integration.hub.conftest import wait_until


def test_stop_stores_the_backlog(tmp_path: Path) -> None:
    broker = PersistentMosquitto().start()
    db = tmp_path / "hub.db"
    store = Store.open(f"sqlite:///{db}")
    hub = Hub(store, EventBus(), broker.host, broker.port)
    hub.start()
    witness = Witness(broker.host, broker.port, f"stop-{time.monotonic_ns()}")
    group = DeviceGroup("gs", "environmental", 20, org="stop", interval_s=0.1, id_prefix="gs")
    running = RunningFleet(Scenario("stop", (group,), FaultPlan(())), broker_url=broker.url,
                           telemetry_qos=0, client_id_prefix="gs-")
    try:
        assert hub.wait_connected(10)
        running.start()
        wait_until(lambda: hub.counters.readings_written > 100, 30, "nothing stored")
        with sqlite_write_lock(db):
            wait_until(lambda: hub.snapshot()["inbox"] > 500, 30, "no backlog built up")
            running.stop()
            time.sleep(0.5)
        backlog = hub.snapshot()["inbox"]
        assert backlog > 500
        assert hub.stop(timeout_s=30) is True
        expected = witness.snapshot()
        assert expected <= set(stored_keys(db)), "the stop left readings unstored"
        assert hub.problems() == []
    finally:
        running.stop()
        witness.close()
        hub.stop(timeout_s=1)
        store.close()
        broker.stop()
