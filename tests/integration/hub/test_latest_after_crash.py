"""The hub writes the latest values every few seconds from memory; a hub killed
in between (SIGKILL: nothing flushed, nothing said) loses none of them: the
next start rebuilds them from the readings it had stored.

Real parts: a private mosquitto, the project's simulator, ``smartiot hub`` as a
subprocess on SQLite."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import text

from core.store import Store
from simulator.api import RunningFleet
from simulator.faults import FaultPlan
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.chaos.rig import HubProcess
from tests.integration.hub.conftest import wait_until


def _newest_stored(store: Store) -> dict[tuple[str, str], tuple[int, float]]:
    """The newest stored reading per device and metric, straight from telemetry."""
    with store.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT t.device_id, t.metric, t.ts, t.value FROM telemetry t JOIN"
            " (SELECT device_id, metric, max(ts) AS ts FROM telemetry"
            "  GROUP BY device_id, metric) m USING (device_id, metric, ts)")).all()
    return {(d, m): (int(ts), float(v)) for d, m, ts, v in rows}


def _latest_table(store: Store) -> dict[tuple[str, str], tuple[int, float]]:
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT device_id, metric, ts, value FROM telemetry_latest"))
        return {(d, m): (int(ts), float(v)) for d, m, ts, v in rows}


def _marker(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM telemetry_latest_pending")
                                ).scalar_one())


def test_latest_values_survive_a_killed_hub(mosquitto_broker, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    data = tmp_path / "data"
    data.mkdir()
    prefix = f"lc{uuid.uuid4().hex[:4]}"
    group = DeviceGroup(prefix, "environmental", 5, org="acme", interval_s=0.2, id_prefix=prefix)
    store = Store.open(url)
    hub = HubProcess(mosquitto_broker.url, url, data)
    running: RunningFleet | None = None
    try:
        hub.wait_running()
        running = RunningFleet(Scenario("crash", (group,), FaultPlan(())),
                               broker_url=mosquitto_broker.url,
                               client_id_prefix=f"{prefix}-").start()
        # the hub has flushed once (every device in the table) and holds newer
        # readings than the table since (its marker is down)
        wait_until(lambda: len(_latest_table(store)) == 5 * 6 and _marker(store) == 1
                   and _newest_stored(store) != _latest_table(store), timeout=30,
                   message="the hub did not store and flush the fleet's readings")
        running.stop()
        running = None
        hub.kill9()
        newest = _newest_stored(store)
        assert _marker(store) == 1 and _latest_table(store) != newest  # it died mid-interval
        hub = HubProcess(mosquitto_broker.url, url, data)
        hub.wait_running()
        assert _latest_table(store) == newest
        assert "rebuilt from the stored readings" in hub.text()
        for device_id in {d for d, _ in newest}:  # what a console asks
            assert {m: (int(r.ts.timestamp() * 1000), r.value)
                    for m, r in store.telemetry.latest(device_id).items()} == {
                m: v for (d, m), v in newest.items() if d == device_id}
        assert hub.interrupt(60) == 0, hub.text()
        assert _marker(store) == 0 and _latest_table(store) == _newest_stored(store)
    finally:
        if running is not None:
            running.stop()
        hub.close()
        store.close()
