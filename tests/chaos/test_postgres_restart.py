"""The hub on PostgreSQL while the server goes down for 6 s (stopped the hard
way, as a crash) and comes back: a private cluster the test creates, never the
shared server. Nothing is lost, the status says the database is away while it
is, and the hub recovers by itself."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub import hub as hub_module
from plugins.local.hub.hub import Hub
from tests.chaos.conftest import report
from tests.chaos.rig import PrivatePostgres, Witness, fleet, wait_until

DOWN_S = 6.0


def _stored(engine: sa.Engine) -> list[tuple[str, str, int]]:
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(
                sa.text("SELECT device_id, metric, ts FROM telemetry"))]
    except sa.exc.OperationalError:
        return []


def test_postgres_restart_loses_nothing(broker, monkeypatch) -> None:
    # the registry reload (a read every 30 s) is part of what must survive the outage
    monkeypatch.setattr(hub_module, "RELOAD_EVERY_S", 1.0)
    monkeypatch.setattr(hub_module, "HOUSEKEEPING_EVERY_S", 1.0)
    pg = PrivatePostgres().start()
    store = Store.open(pg.url)
    check = sa.create_engine(pg.url.replace("postgresql://", "postgresql+psycopg://"),
                             pool_pre_ping=True)
    hub = Hub(store, EventBus(), broker.host, broker.port)
    witness = Witness(broker.host, broker.port, f"pg-{time.monotonic_ns()}")
    running = None
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            state = hub.snapshot()["degraded"]
            if state:
                seen.append(state)

    try:
        hub.start()
        assert hub.wait_connected(10)
        threading.Thread(target=watch, daemon=True).start()
        running = fleet(broker.url, 10, prefix="pgr", interval_s=0.2)
        wait_until(lambda: len(_stored(check)) > 300, 60, "nothing stored before the fault")
        pg.stop("immediate")
        wait_until(lambda: any("database unavailable" in s for s in seen), 30,
                   "the status did not say the database was away")
        time.sleep(DOWN_S)
        assert hub._thread.is_alive()
        pg.start()
        back = time.monotonic()
        wait_until(lambda: hub.snapshot()["degraded"] == "" and hub.counters.outages >= 1, 90,
                   "the hub did not recover after the server came back")
        recovered_after = time.monotonic() - back
        running.stop()
        running = None
        time.sleep(1.0)
        expected = witness.snapshot()
        wait_until(lambda: expected <= set(_stored(check)), 90,
                   "readings the broker accepted are missing from the store")
        stored = _stored(check)
        assert len(stored) == len(set(stored)), "a reading was stored twice"
        report("postgres-restart", down_s=f"{DOWN_S + 1:.0f}",
               recovered_after_restart_s=f"{recovered_after:.1f}",
               longest_outage_s=f"{hub.counters.longest_outage_s:.1f}",
               readings=len(expected), lost=0, stored_twice=0)
    finally:
        done.set()
        if running is not None:
            running.stop()
        witness.close()
        hub.stop(timeout_s=5)
        store.close()
        check.dispose()
        pg.close()
