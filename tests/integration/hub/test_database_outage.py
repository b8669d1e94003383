"""The hub against a database that goes away (finding 3 of the reliability
audit): a SQLite file whose write lock another connection holds for 8 s while a
real simulated fleet publishes QoS 1 telemetry. Nothing is lost, the status
says "degraded: database unavailable for N s" while it lasts, and the hub
recovers by itself; the writer thread survives every stage failing, the
housekeeping and registry reload included (they killed it before)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import core.store.engine
from core.model.events import HubStatus
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub import hub as hub_module
from plugins.local.hub.hub import Hub
from tests.chaos.rig import PersistentMosquitto, Witness, fleet, sqlite_write_lock, stored_keys
from tests.integration.hub.conftest import EventLog, wait_until

LOCK_S = 8.0


@pytest.fixture(scope="module")
def broker():
    b = PersistentMosquitto().start()
    yield b
    b.stop()


@pytest.fixture
def short_busy_timeout(monkeypatch):
    """Writes fail after 0.5 s of waiting instead of SQLite's 10 s, so an 8 s
    lock makes many writes fail (the failure path, not just a long wait)."""
    monkeypatch.setattr(core.store.engine, "SQLITE_BUSY_TIMEOUT_MS", 500)


def test_a_locked_database_loses_nothing_and_the_status_says_so(broker, tmp_path: Path,
                                                               short_busy_timeout,
                                                               monkeypatch):
    # housekeeping and the registry reload run twice a second here: both ran
    # outside the error handling and killed the writer thread at the first failure
    monkeypatch.setattr(hub_module, "HOUSEKEEPING_EVERY_S", 0.5)
    monkeypatch.setattr(hub_module, "RELOAD_EVERY_S", 0.5)
    db = tmp_path / "hub.db"
    store = Store.open(f"sqlite:///{db}")
    bus = EventBus()
    events = EventLog(bus)
    hub = Hub(store, bus, broker.host, broker.port)
    hub.start()
    assert hub.wait_connected(10)
    witness = Witness(broker.host, broker.port, f"outage-{time.monotonic_ns()}")
    running = fleet(broker.url, 5, prefix="dbo", interval_s=0.2)
    seen_degraded: list[str] = []
    stop_watching = threading.Event()

    def watch() -> None:
        while not stop_watching.wait(0.2):
            state = hub.snapshot()["degraded"]
            if state:
                seen_degraded.append(state)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        wait_until(lambda: hub.counters.readings_written > 100, 30, "nothing stored")
        with sqlite_write_lock(db):
            time.sleep(LOCK_S)
            during = hub.snapshot()
        assert during["degraded"].startswith("degraded: database unavailable for ")
        assert any(s.startswith("degraded: database unavailable for ") for s in seen_degraded)
        assert hub._thread.is_alive()
        # the HUB live event said it too, while it lasted (what the status bar shows)
        assert any(e.degraded.startswith("degraded: database unavailable")
                   for e in events.of(HubStatus))
        assert during["write_failures"] > 0
        assert during["inbox"] + during["processed"] <= during["received"]
        # recovers by itself
        wait_until(lambda: hub.snapshot()["degraded"] == "" and hub.counters.outages == 1,
                   60, "the hub did not recover after the lock was released")
        assert hub.counters.last_outage_s >= LOCK_S - 2.0
        time.sleep(1.0)
    finally:
        running.stop()
        stop_watching.set()
    try:
        expected = witness.snapshot()
        wait_until(lambda: expected <= set(stored_keys(db)), 60,
                   "readings the broker accepted are missing from the store")
        stored = stored_keys(db)
        assert len(expected) > 500
        assert max(stored.values()) == 1
        assert hub._thread.is_alive()
    finally:
        witness.close()
        hub.stop()
        store.close()
