"""The console's telemetry feed through a receiver child (plugins.local.live_receiver),
on a real mosquitto: messages are decoded and validated in the child; the console
gets every reading of focused devices and only the table's metrics of the others;
bad messages are counted, never passed on; a withdrawn focus trims again."""

from __future__ import annotations

import json
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core.model.events import TelemetryReceived
from core.protocol.payloads import Telemetry
from core.services.event_bus import EventBus
from plugins.local.live_receiver import FleetReceiver
from tests.integration.hub.conftest import wait_until

METRICS = {"temperature": 21.5, "humidity": 40.0, "battery_pct": 88.0, "rssi": -61.0}


@pytest.fixture
def feed(mosquitto_broker):
    bus = EventBus()
    got: list[TelemetryReceived] = []
    bus.subscribe(lambda events: got.extend(e for e in events
                                             if isinstance(e, TelemetryReceived)))
    receiver = FleetReceiver(mosquitto_broker.host, mosquitto_broker.port, bus,
                             client_id=f"live-{uuid.uuid4().hex[:6]}", username=None,
                             password=None, tls=False).start()
    assert receiver.receiver.wait_subscribed(30)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:6]}")
    publisher.connect(mosquitto_broker.host, mosquitto_broker.port)
    publisher.loop_start()
    yield bus, receiver, publisher, got
    publisher.loop_stop()
    publisher.disconnect()
    receiver.stop()


def _send(publisher, device_id: str, seq: int, payload: bytes | None = None) -> None:
    if payload is None:
        payload = Telemetry(device_id, seq, int(time.time() * 1000), dict(METRICS)).encode()
    publisher.publish(f"dt/site/{device_id}/telemetry", payload, qos=1).wait_for_publish(10)


def test_focused_devices_get_every_reading_the_rest_the_table_columns(feed):
    bus, receiver, publisher, got = feed
    withdraw = bus.focus(["dev-a"])
    _send(publisher, "dev-a", 1)
    _send(publisher, "dev-b", 1)
    # bad ones: not JSON, and a payload naming another device than its topic
    _send(publisher, "dev-b", 2, b"{not json")
    _send(publisher, "dev-b", 3, Telemetry("dev-c", 3, int(time.time() * 1000),
                                           dict(METRICS)).encode())
    wait_until(lambda: receiver.messages >= 4, timeout=30)
    wait_until(lambda: len(got) >= 2, timeout=30)
    by_device = {e.device_id: e for e in got}
    assert set(by_device) == {"dev-a", "dev-b"}
    assert {r.metric for r in by_device["dev-a"].readings} == set(METRICS)
    assert {r.metric: r.value for r in by_device["dev-b"].readings} == {
        "battery_pct": 88.0, "rssi": -61.0}
    assert by_device["dev-b"].seq == 1
    assert receiver.rejected == 2

    # focus withdrawn: dev-a is trimmed like any other device
    withdraw()
    got.clear()
    _send(publisher, "dev-a", 2)
    wait_until(lambda: len(got) >= 1, timeout=30)
    assert {r.metric for r in got[0].readings} == {"battery_pct", "rssi"}


def test_a_message_without_the_table_metrics_still_moves_last_seen(feed):
    _, receiver, publisher, got = feed
    payload = json.dumps({"device_id": "dev-t", "seq": 5, "ts": int(time.time() * 1000),
                          "metrics": {"temperature": 19.0}}).encode()
    _send(publisher, "dev-t", 5, payload)
    wait_until(lambda: len(got) >= 1, timeout=30)
    assert [r.metric for r in got[0].readings] == ["temperature"]
    assert receiver.rejected == 0
