"""The hub makes a ``TelemetryReceived`` (with a ``Reading`` per metric) for each
message only while someone listens to its event bus. ``smartiot hub`` has nobody
there (consoles follow it through the broker), and those events were a tenth of
its writer thread's CPU, made only to be dropped. A console that starts
listening later gets them from its next batch on: the hub asks every batch."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from core.model.events import TelemetryReceived
from core.model.timeutil import from_epoch_ms
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.hub import Hub
from tests.integration.hub.conftest import EventLog, wait_until
from tests.mqtt_recorder import Recorder


def _body(seq: int, ts_ms: int) -> bytes:
    return json.dumps({"device_id": "p1", "seq": seq, "ts": ts_ms, "type": "pump",
                       "fw": "1.0.0",
                       "metrics": {"temperature": 20.0 + seq, "pressure": 1.5 * seq}}).encode()


def _stored(store: Store) -> list[float]:
    series = store.telemetry.query("p1", "temperature", datetime(2020, 1, 1, tzinfo=UTC),
                                   datetime(2100, 1, 1, tzinfo=UTC))
    return sorted(series.value.tolist())


def test_a_console_that_starts_listening_gets_live_readings_from_then_on(
        mosquitto_broker, tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    bus = EventBus()
    hub = Hub(store, bus, mosquitto_broker.host, mosquitto_broker.port)
    hub.start()
    sender = Recorder(mosquitto_broker.host, mosquitto_broker.port, ["nothing/here"])
    now = int(time.time() * 1000) - 10_000
    try:
        assert hub.wait_subscribed(10)
        for seq in range(3):  # nobody listening: stored all the same
            sender.publish("dt/acme/p1/telemetry", _body(seq, now + seq))
        wait_until(lambda: len(_stored(store)) == 3, message="the first 3 were not stored")
        assert hub.ingestor.live_events is False

        log = EventLog(bus)  # a console opens
        for seq in range(3, 6):
            sender.publish("dt/acme/p1/telemetry", _body(seq, now + seq))
        wait_until(lambda: len(log.of(TelemetryReceived)) == 3,
                   message="a listener that came later got no live readings")
    finally:
        sender.close()
        hub.stop()
    events = log.of(TelemetryReceived)
    assert [e.seq for e in events] == [3, 4, 5]
    for event in events:
        seq = event.seq
        assert event.device_id == "p1" and event.firmware == "1.0.0"
        assert {(r.device_id, r.metric, r.ts, r.value) for r in event.readings} == {
            ("p1", "temperature", from_epoch_ms(now + seq), 20.0 + seq),
            ("p1", "pressure", from_epoch_ms(now + seq), 1.5 * seq)}
    assert _stored(store) == [20.0 + seq for seq in range(6)]
    store.close()
