"""The sandbox's shadow service: a device's shadow over MQTT is the shadow
the API reads and writes through IoT Data (moto's server over HTTP), and a
console's desired state reaches the device as a delta, as on IoT Core."""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from plugins.aws.sandbox.mqtt import IotCoreStandIn
from plugins.aws.sandbox.shadows import ShadowService
from tests.integration.aws.conftest import AwsSandbox


class Device:
    """A device on the stand-in broker that keeps what its shadow topics get."""

    def __init__(self, broker: IotCoreStandIn, thing: str) -> None:
        self.thing = thing
        self.inbox: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        subscribed: queue.Queue[bool] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=thing)
        self.client.on_connect = lambda c, *a: c.subscribe(f"$aws/things/{thing}/shadow/+/+", 1)
        self.client.on_subscribe = lambda *a: subscribed.put(True)
        self.client.on_message = lambda c, u, m: self.inbox.put(
            (m.topic.split("/shadow/")[1], json.loads(m.payload)))
        self.client.connect(broker.host, broker.mqtt_port)
        self.client.loop_start()
        subscribed.get(timeout=10)

    def send(self, op: str, document: dict[str, Any]) -> None:
        self.client.publish(f"$aws/things/{self.thing}/shadow/{op}", json.dumps(document),
                            qos=1).wait_for_publish(5)

    def next(self, expected: str) -> dict[str, Any]:
        while True:
            suffix, document = self.inbox.get(timeout=10)
            if suffix == expected:
                return document

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def device(aws: AwsSandbox) -> Iterator[tuple[Device, Any]]:
    broker = IotCoreStandIn().start()
    service = ShadowService(aws.client("iot-data"), aws.client("iot"),
                            (broker.host, broker.mqtt_port)).start()
    pump = Device(broker, f"pump-{aws.stage}")
    try:
        yield pump, aws.client("iot-data")
    finally:
        pump.close()
        service.stop()
        broker.stop()


def test_a_device_reports_and_receives_a_consoles_desired_state(
        device: tuple[Device, Any]) -> None:
    pump, iot_data = device
    pump.send("get", {"clientToken": "first"})
    first = pump.next("get/rejected")
    assert first["code"] == 404  # no shadow yet
    assert first["clientToken"] == "first"  # echoed, as IoT Core does

    pump.send("update", {"state": {"reported": {"interval": 5}}})
    assert pump.next("update/accepted")["state"] == {"reported": {"interval": 5}}
    stored = json.loads(iot_data.get_thing_shadow(thingName=pump.thing)["payload"].read())
    assert stored["state"]["reported"] == {"interval": 5}

    # a console (the API) sets desired state through IoT Data
    iot_data.update_thing_shadow(thingName=pump.thing, payload=json.dumps(
        {"state": {"desired": {"interval": 10}}, "version": stored["version"]}))
    delta = pump.next("update/delta")
    assert delta["state"] == {"interval": 10} and delta["version"] == stored["version"] + 1

    pump.send("get", {"clientToken": "second"})
    document = pump.next("get/accepted")
    assert document["state"]["delta"] == {"interval": 10}
    assert document["clientToken"] == "second"

    pump.send("update", {"state": {"reported": {"interval": 10}}, "version": 1})
    assert pump.next("update/rejected")["code"] == 409  # a stale version

    pump.send("update", {"state": {"reported": {"interval": 10}}})
    pump.next("update/accepted")
    stored = json.loads(iot_data.get_thing_shadow(thingName=pump.thing)["payload"].read())
    assert "delta" not in stored["state"]


def test_the_service_leaves_moto_as_it_found_it(aws: AwsSandbox) -> None:
    from moto.iotdata.models import IoTDataPlaneBackend

    before = IoTDataPlaneBackend.update_thing_shadow
    broker = IotCoreStandIn().start()
    service = ShadowService(aws.client("iot-data"), aws.client("iot"),
                            (broker.host, broker.mqtt_port)).start()
    assert IoTDataPlaneBackend.update_thing_shadow is not before
    service.stop()
    broker.stop()
    assert IoTDataPlaneBackend.update_thing_shadow is before
