"""What the hub's receiver process drops reaches the status bar: a real hub
receiving telemetry in its child process on a private mosquitto, whose parent
takes the child's batches slowly (a busy hub), so the child's buffer fills and
it drops QoS 0 messages. The hub's status event and its heartbeat (what a
console of a hub that runs elsewhere reads) carry the count, and the status
bar names it beside the other reasons the hub shed for."""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import plugins.local.hub.hub as hub_module
from core.ports.backend import Backend
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.commands import status_line
from plugins.local.hub.heartbeat import HubPresence, decode_beat, online_beat
from plugins.local.hub.hub import Hub
from plugins.local.widgets.status import HubStatusWidget
from tests.chaos.rig import PersistentMosquitto
from tests.gui.alerts.conftest import BackendPlugin

pytestmark = pytest.mark.gui


def test_status_bar_shows_what_the_receiver_process_dropped(qtbot, make_context,
                                                            tmp_path: Path,
                                                            monkeypatch) -> None:
    take = hub_module.Hub._on_batch

    def slow(self: Hub, batch: object) -> None:
        time.sleep(0.3)  # the parent is busy: the child's buffer fills meanwhile
        take(self, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(hub_module.Hub, "_on_batch", slow)
    broker = PersistentMosquitto().start()
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    bus = EventBus()
    hub = Hub(store, bus, broker.host, broker.port, inbox_limit=20, receiver="process")
    hub.start()
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rx-drop-publisher")
    try:
        assert hub.wait_subscribed(30)
        assert hub.receiver is not None
        backend = Backend(name="local", registry=store.registry, alerts=store.alerts,
                          telemetry=store.telemetry, live=bus, rules=store.rules,
                          quarantine=store.quarantine, audit=store.audit)
        widget = HubStatusWidget(make_context(("test-backend", BackendPlugin(backend))))
        qtbot.addWidget(widget)
        publisher.connect(broker.host, broker.port)
        publisher.loop_start()
        for i in range(3_000):
            publisher.publish("dt/rx/dev-1/telemetry", b'{"seq":%d}' % i, qos=0)
        qtbot.waitUntil(lambda: hub.receiver is not None and
                        hub.receiver.counters.dropped > 0, timeout=30_000)
        qtbot.waitUntil(lambda: widget.shed_receiver > 0, timeout=15_000)
        health = widget.texts()["health"]
        assert f"{widget.shed_receiver:,} dropped by the receiver (overload)" in health
        assert "receiver process dropped" in widget.health_label.toolTip()

        snapshot = hub.snapshot()
        dropped = snapshot["receiver"]["dropped"]
        assert dropped > 0
        assert f"{dropped:,} dropped by the receiver (overload)" in status_line(snapshot)
        # a console whose hub runs elsewhere reads it from the heartbeat
        beat = decode_beat(online_beat("hub-1", 1, snapshot, now_ms=2).encode())
        assert beat.shed_receiver == dropped
        presence = HubPresence()
        assert presence.heard(beat)
        remote = HubStatusWidget(make_context())
        qtbot.addWidget(remote)
        remote.apply_events([presence.event("connected")])
        assert f"{dropped:,} dropped by the receiver (overload)" in remote.texts()["health"]
        remote.resize(remote.sizeHint().width() + 40, 28)
        remote.show()
        qtbot.waitExposed(remote)
        remote.grab().save(str(tmp_path / "status-receiver-drops.png"))  # to look at
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        hub.stop(timeout_s=10)
        store.close()
        broker.stop()
