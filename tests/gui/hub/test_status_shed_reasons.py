"""What the hub sheds, per reason, in the console's status bar: a real hub on a
private mosquitto and SQLite, overrun by a burst of QoS 0 messages (its inbox is
full: "shed (overload)") and then, while another connection holds the database's
write lock, kept from writing the quarantine rows of refused messages ("quarantine
rows shed (database away)"). The real status widget, fed by the hub's own status
events, names both with the hub's counts; the heartbeat a console of a hub that
runs elsewhere reads carries both as well."""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import core.store.engine
import plugins.local.hub.hub as hub_module
from core.ports.backend import Backend
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.heartbeat import HubPresence, decode_beat, online_beat
from plugins.local.hub.hub import Hub
from plugins.local.widgets.status import HubStatusWidget
from tests.chaos.rig import PersistentMosquitto, sqlite_write_lock
from tests.gui.alerts.conftest import BackendPlugin

pytestmark = pytest.mark.gui


def _publisher(host: str, port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="shed-test-publisher")
    client.connect(host, port)
    client.loop_start()
    return client


def test_status_bar_names_each_reason_the_hub_shed_for(qtbot, make_context, tmp_path: Path,
                                                       monkeypatch) -> None:
    monkeypatch.setattr(core.store.engine, "SQLITE_BUSY_TIMEOUT_MS", 300)
    monkeypatch.setattr(hub_module, "MAX_PENDING_QUARANTINE", 3)
    broker = PersistentMosquitto().start()
    db = tmp_path / "hub.db"
    store = Store.open(f"sqlite:///{db}")
    bus = EventBus()
    hub = Hub(store, bus, broker.host, broker.port, inbox_limit=5)
    hub.start()
    publisher = None
    try:
        assert hub.wait_subscribed(15)
        backend = Backend(name="local", registry=store.registry, alerts=store.alerts,
                          telemetry=store.telemetry, live=bus, rules=store.rules,
                          quarantine=store.quarantine, audit=store.audit)
        widget = HubStatusWidget(make_context(("test-backend", BackendPlugin(backend))))
        qtbot.addWidget(widget)
        publisher = _publisher(broker.host, broker.port)
        # a burst far beyond an inbox of 5 between two drains: QoS 0 is shed
        for i in range(3_000):
            publisher.publish("dt/shed/dev-1/telemetry", b"not json %d" % i, qos=0)
        qtbot.waitUntil(lambda: hub.counters.shed_overload > 0, timeout=30_000)
        with sqlite_write_lock(db):
            # refused messages while the database is away: their quarantine rows
            # wait in memory, at most MAX_PENDING_QUARANTINE of them
            deadline = time.monotonic() + 30
            while hub.counters.shed_quarantine == 0 and time.monotonic() < deadline:
                publisher.publish("dt/shed/dev-1/telemetry", b"still not json", qos=0)
                qtbot.wait(50)
            assert hub.counters.shed_quarantine > 0
        counts = (hub.counters.shed_overload, hub.counters.shed_quarantine)
        qtbot.waitUntil(lambda: (widget.shed_overload, widget.shed_quarantine) == (
            hub.counters.shed_overload, hub.counters.shed_quarantine), timeout=15_000)
        health = widget.texts()["health"]
        assert f"{widget.shed_overload:,} shed (overload)" in health
        assert f"{widget.shed_quarantine:,} quarantine rows shed (database away)" in health
        tip = widget.health_label.toolTip()
        assert "inbox was full" in tip and "database was away" in tip
        # the hub shares this window's process: the way out is said with it
        assert "set hub_process = true in the profile" in tip and "hub_process_above" in tip
        assert widget.shed_overload >= counts[0] and widget.shed_quarantine >= counts[1]

        # a console whose hub runs elsewhere reads the same from the hub's heartbeat
        beat = decode_beat(online_beat("hub-1", 1, hub.snapshot(), now_ms=2).encode())
        assert (beat.shed_overload, beat.shed_quarantine) == (
            hub.counters.shed_overload, hub.counters.shed_quarantine)
        presence = HubPresence()
        assert presence.heard(beat)
        remote = HubStatusWidget(make_context())
        qtbot.addWidget(remote)
        remote.apply_events([presence.event("connected")])
        assert "quarantine rows shed (database away)" in remote.texts()["health"]
        assert "shed (overload)" in remote.texts()["health"]
        assert "hub_process" not in remote.health_label.toolTip()  # its hub is elsewhere
    finally:
        if publisher is not None:
            publisher.loop_stop()
            publisher.disconnect()
        hub.stop(timeout_s=5)
        store.close()
        broker.stop()
