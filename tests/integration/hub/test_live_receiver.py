"""The console's telemetry feed through a receiver child (plugins.local.live_receiver),
on a real mosquitto: messages are decoded and validated in the child; the console
gets every reading of focused devices and, for the others, only the table's
columns (``TableSamples``); bad messages are counted, never passed on; a withdrawn
focus trims again."""

from __future__ import annotations

import json
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core.model.events import TableSamples, TelemetryReceived
from core.protocol.payloads import Telemetry
from core.services.event_bus import EventBus
from plugins.local.live_receiver import FleetReceiver
from tests.integration.hub.conftest import wait_until

METRICS = {"temperature": 21.5, "humidity": 40.0, "battery_pct": 88.0, "rssi": -61.0}


@pytest.fixture
def feed(mosquitto_broker):
    bus = EventBus()
    got: list[TelemetryReceived | TableSamples] = []
    bus.subscribe(lambda events: got.extend(
        e for e in events if isinstance(e, TelemetryReceived | TableSamples)))
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
    wait_until(lambda: len(_rows(got)) >= 2, timeout=30)
    full = [e for e in got if isinstance(e, TelemetryReceived)]
    assert [e.device_id for e in full] == ["dev-a"]
    assert {r.metric for r in full[0].readings} == set(METRICS)
    assert full[0].seq == 1
    # dev-b: its time, battery and RSSI only, as table columns
    assert _rows(got) == {"dev-a": None, "dev-b": (88.0, -61.0, "")}
    assert receiver.rejected == 2

    # focus withdrawn: dev-a comes as table columns like any other device
    withdraw()
    got.clear()
    _send(publisher, "dev-a", 2)
    wait_until(lambda: len(_rows(got)) >= 1, timeout=30)
    assert _rows(got) == {"dev-a": (88.0, -61.0, "")}
    assert not any(isinstance(e, TelemetryReceived) for e in got)


def _rows(got) -> dict[str, tuple | None]:
    """Device -> (battery, RSSI, firmware) from table columns, or None for a
    device whose every reading came."""
    out: dict[str, tuple | None] = {}
    for e in got:
        if isinstance(e, TelemetryReceived):
            out.setdefault(e.device_id, None)
            continue
        assert len(e) == len(e.ts_ms) == len(e.battery) == len(e.rssi) == len(e.firmware)
        assert all(abs(ts - time.time() * 1000) < 60_000 for ts in e.ts_ms)
        for i, device_id in enumerate(e.device_ids):
            out[device_id] = (e.battery[i], e.rssi[i], e.firmware[i])
    return out


def test_a_message_without_the_table_metrics_still_moves_last_seen(feed):
    _, receiver, publisher, got = feed
    payload = json.dumps({"device_id": "dev-t", "seq": 5, "ts": int(time.time() * 1000),
                          "metrics": {"temperature": 19.0}}).encode()
    _send(publisher, "dev-t", 5, payload)
    wait_until(lambda: len(got) >= 1, timeout=30)
    # no battery, no RSSI: the table still hears its time (its "last seen")
    (samples,) = got
    assert isinstance(samples, TableSamples)
    assert samples.device_ids == ("dev-t",) and samples.battery == (None,) == samples.rssi
    assert abs(samples.ts_ms[0] - time.time() * 1000) < 60_000
    assert receiver.rejected == 0
