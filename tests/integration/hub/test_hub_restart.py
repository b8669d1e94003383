"""A hub restart loses nothing, and what a hub outage does lose is the hub's.

Real parts: a private mosquitto configured as the project configures brokers
(``queue_qos0_messages`` for the hub's persistent session), the project's
simulator publishing QoS 0 telemetry, and the hub as a `smartiot hub`
subprocess stopped for ~10 s (SQLite, and PostgreSQL when
SMARTIOT_TEST_PG_URL is set) or, for the full-queue case, in-process."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from core.model import DeviceStatus
from core.services.event_bus import EventBus
from core.store import Store
from core.store.engine import create_store_engine
from plugins.local.hub.hub import Hub, stable_client_id
from simulator.api import RunningFleet
from simulator.broker import EmbeddedBroker
from simulator.broker_queue import HubQueue
from simulator.faults import FaultPlan
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.chaos.rig import HubProcess
from tests.integration.hub.conftest import wait_until

PG = os.environ.get("SMARTIOT_TEST_PG_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
        return
    if not PG:
        pytest.skip("SMARTIOT_TEST_PG_URL not set")
    name = f"smartiot_restart_{uuid.uuid4().hex[:10]}"
    admin = create_store_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def start_fleet(broker_url: str, devices: int, prefix: str, interval_s: float) -> RunningFleet:
    group = DeviceGroup(prefix, "environmental", devices, org="acme", interval_s=interval_s,
                        id_prefix=prefix)
    return RunningFleet(Scenario("restart", (group,), FaultPlan(())), broker_url=broker_url,
                        client_id_prefix=f"{prefix}-").start()


def sent_per_device(running: RunningFleet) -> dict[str, int]:
    """Readings each simulated device made (seq counts from 0, one per reading)."""
    return {device_id: int(gs.seq[i]) for gs in running.fleet.groups
            for i, device_id in enumerate(gs.ids)}


def stored_per_device(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT device_id, COUNT(DISTINCT ts) FROM telemetry GROUP BY device_id")).all()
    return {device_id: int(count) for device_id, count in rows}


class OfflineWatch:
    """Polls the registry while devices publish: any of them ever offline?"""

    def __init__(self, store: Store, prefix: str) -> None:
        self.store, self.prefix = store, prefix
        self.offline: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(Exception):  # the database may be busy: look again
                self.offline |= {d.device_id for d in self.store.registry.list()
                                 if d.device_id.startswith(self.prefix)
                                 and d.status is DeviceStatus.OFFLINE}

    def stop(self) -> set[str]:
        self._stop.set()
        self._thread.join(5)
        return self.offline


def test_a_hub_stopped_for_ten_seconds_loses_no_reading(database_url, mosquitto_broker,
                                                        tmp_path: Path) -> None:
    prefix = f"rs{uuid.uuid4().hex[:4]}"
    devices = 20
    data = tmp_path / "data"
    data.mkdir()
    hub = HubProcess(mosquitto_broker.url, database_url, data)
    running = watch = None
    store = Store.open(database_url)
    try:
        hub.wait_running()
        running = start_fleet(mosquitto_broker.url, devices, prefix, interval_s=0.5)
        wait_until(lambda: len(stored_per_device(store)) == devices, timeout=30,
                   message="the hub did not store every device before the restart")
        watch = OfflineWatch(store, prefix)
        assert hub.interrupt(60) == 0, hub.text()  # a clean stop: inbox stored first
        time.sleep(10)  # the outage itself: the fleet keeps publishing (~400 readings)
        hub = HubProcess(mosquitto_broker.url, database_url, data)
        hub.wait_running()
        time.sleep(2)  # live traffic after the queue, to see the seam
        running.stop()  # devices disconnect cleanly
        sent = sent_per_device(running)
        running = None
        wait_until(lambda: stored_per_device(store) == sent, timeout=30,
                   message="not every reading the fleet sent was stored")
        wait_until(lambda: all(s.received == sent[s.device_id]
                               for s in store.link_stats.list() if s.device_id in sent),
                   timeout=15, message="link statistics not written")
        offline = watch.stop()
        watch = None
        assert hub.interrupt(60) == 0, hub.text()
    finally:
        if watch is not None:
            watch.stop()
        if running is not None:
            running.stop()
        hub.close()
    assert sum(sent.values()) >= devices * 2 * 12  # the outage was spanned
    assert offline == set(), f"shown offline while publishing: {sorted(offline)}"
    stats = [s for s in store.link_stats.list() if s.device_id in sent]
    assert len(stats) == devices
    assert [(s.device_id, s.lost, s.hub_lost) for s in stats if s.lost or s.hub_lost] == []
    assert store.quarantine.list() == []
    print(f"HUB-RESTART {database_url.split(':')[0]}: {devices} devices, "
          f"{sum(sent.values())} readings sent, {sum(stored_per_device(store).values())} "
          f"stored, lost {sum(s.lost for s in stats)}, hub_lost {sum(s.hub_lost for s in stats)}")
    store.close()


def test_a_gap_while_the_hub_is_down_is_booked_to_the_hub(tmp_path: Path) -> None:
    """A broker that queues no QoS 0 for the hub (mosquitto's default; 2.0.11 does
    not count queued QoS 0 against max_queued_messages, so "too small" is none):
    what 20 devices send while the hub is down is dropped, those seq gaps are the
    hub's loss, the devices' own loss stays 0, and every reading is either stored
    or counted as the hub's."""
    small = HubQueue(messages=0, outage_s=5)
    with EmbeddedBroker(prefer="mosquitto", anonymous=True, queue=small) as broker:
        url = f"sqlite:///{tmp_path / 'hub.db'}"
        client_id = stable_client_id("test", url, host=uuid.uuid4().hex[:6])
        store = Store.open(url)
        hub = Hub(store, EventBus(), broker.host, broker.port, client_id=client_id)
        hub.start()
        running = None
        try:
            assert hub.wait_subscribed(10)
            running = start_fleet(broker.url, 20, "gap", interval_s=0.5)
            wait_until(lambda: len(stored_per_device(store)) == 20, timeout=30)
            hub.stop(timeout_s=10)
            time.sleep(4)  # ~160 readings nobody queues
            hub = Hub(store, EventBus(), broker.host, broker.port, client_id=client_id)
            hub.start()
            assert hub.wait_subscribed(10)
            time.sleep(1.5)
            running.stop()
            sent = sent_per_device(running)
            running = None

            def settled() -> bool:
                stats = {s.device_id: s for s in store.link_stats.list()}
                return all(d in stats and stats[d].received + stats[d].hub_lost == n
                           for d, n in sent.items())

            wait_until(settled, timeout=20, message="readings neither stored nor booked")
        finally:
            if running is not None:
                running.stop()
            hub.stop(timeout_s=10)
        stats = {s.device_id: s for s in store.link_stats.list()}
        assert sum(s.hub_lost for s in stats.values()) >= 50
        assert {d: s.lost for d, s in stats.items()} == dict.fromkeys(sent, 0)
        assert hub.snapshot()["hub_lost"] == sum(s.hub_lost for s in stats.values())
        stored = stored_per_device(store)
        assert all(stored[d] == stats[d].received for d in sent)
        print(f"HUB-GAP: {sum(sent.values())} readings sent, {sum(stored.values())} stored, "
              f"hub_lost {sum(s.hub_lost for s in stats.values())}, device lost 0")
        store.close()
