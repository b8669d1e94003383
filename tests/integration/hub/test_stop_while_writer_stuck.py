"""Hub.stop while the writer thread is held up in the database past its join:
the stopping thread must not drain the inbox as well (two threads writing the
same batch); what was not acknowledged comes again from the broker."""

from __future__ import annotations

import threading
from pathlib import Path

import core.store.engine
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub import hub as hub_module
from plugins.local.hub.hub import Hub
from tests.chaos.rig import PersistentMosquitto, fleet, sqlite_write_lock
from tests.integration.hub.conftest import wait_until


def test_stop_leaves_the_inbox_to_a_writer_stuck_in_the_database(tmp_path: Path,
                                                                  monkeypatch) -> None:
    # a write waits up to 20 s for the lock; stop waits only 0.5 s for the writer
    monkeypatch.setattr(core.store.engine, "SQLITE_BUSY_TIMEOUT_MS", 20_000)
    monkeypatch.setattr(hub_module, "STOP_JOIN_GRACE_S", 0.3)
    broker = PersistentMosquitto().start()
    db = tmp_path / "hub.db"
    store = Store.open(f"sqlite:///{db}")
    writers: list[str] = []
    write_batch = store.telemetry.write_batch

    def recording_write(rows):
        writers.append(threading.current_thread().name)
        return write_batch(rows)

    store.telemetry.write_batch = recording_write
    hub = Hub(store, EventBus(), broker.host, broker.port)
    hub.start()
    running = fleet(broker.url, 3, prefix="stuck", interval_s=0.1)
    stopped = None
    try:
        assert hub.wait_connected(10)
        wait_until(lambda: hub.counters.readings_written > 20, 30, "nothing stored")
        with sqlite_write_lock(db):
            wait_until(lambda: hub.health.busy_since is not None and hub.snapshot()["inbox"],
                       30, "the writer never waited on the lock with a backlog")
            running.stop()
            writers.clear()
            stopped = hub.stop(timeout_s=0.2)
            assert "MainThread" not in writers, "stop drained beside the stuck writer"
            assert hub._thread.is_alive(), "the writer was expected to be still stuck"
        assert stopped is False
    finally:
        running.stop()
        hub.stop(timeout_s=1)
        hub._thread.join(30)
        store.close()
        broker.stop()
