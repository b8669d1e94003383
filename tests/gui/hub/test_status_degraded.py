"""The console's status bar while the hub's database is away: a real hub on a
private mosquitto with a real SQLite file whose write lock another connection
holds, a real simulated fleet, and the real status widget fed through the live
feed. It says "Database unavailable for N s" while it lasts and clears after,
and shows messages/s and readings/s."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import core.store.engine
from core.ports.backend import Backend
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.hub import Hub
from plugins.local.widgets.status import HubStatusWidget
from tests.chaos.rig import PersistentMosquitto, fleet, sqlite_write_lock
from tests.gui.alerts.conftest import BackendPlugin

pytestmark = pytest.mark.gui


def test_status_bar_says_database_unavailable_while_it_is(qtbot, make_context, tmp_path: Path,
                                                         monkeypatch) -> None:
    monkeypatch.setattr(core.store.engine, "SQLITE_BUSY_TIMEOUT_MS", 500)
    broker = PersistentMosquitto().start()
    db = tmp_path / "hub.db"
    store = Store.open(f"sqlite:///{db}")
    bus = EventBus()
    hub = Hub(store, bus, broker.host, broker.port)
    hub.start()
    running = None
    try:
        assert hub.wait_connected(10)
        backend = Backend(name="local", registry=store.registry, alerts=store.alerts,
                          telemetry=store.telemetry, live=bus, rules=store.rules,
                          quarantine=store.quarantine, audit=store.audit)
        context = make_context(("test-backend", BackendPlugin(backend)))
        widget = HubStatusWidget(context)
        qtbot.addWidget(widget)
        running = fleet(broker.url, 5, prefix="gst", interval_s=0.2)
        qtbot.waitUntil(lambda: (widget.readings_per_s or 0) > 0, timeout=30_000)
        assert "readings/s" in widget.texts()["rate"]
        assert widget.texts()["health"] == ""
        with sqlite_write_lock(db):
            qtbot.waitUntil(lambda: "Database unavailable for" in widget.texts()["health"],
                            timeout=20_000)
            first = widget.degraded
            time.sleep(2.5)
            qtbot.waitUntil(lambda: widget.degraded != first, timeout=10_000)  # it counts up
        qtbot.waitUntil(lambda: widget.texts()["health"] == "", timeout=30_000)
        assert hub.counters.outages == 1
    finally:
        if running is not None:
            running.stop()
        hub.stop(timeout_s=5)
        store.close()
        broker.stop()
