"""Retained messages on the sandbox's IoT Core stand-in reach only the
clients whose own subscriptions match them, as on IoT Core: a console that
subscribes to one topic must not be handed the retained device status another
client subscribed to (amqtt 0.12 sent every connecting client the retained
messages of every filter any client held; simulator.broker repairs it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from plugins.aws.sandbox.mqtt import IotCoreStandIn


@pytest.fixture
def broker() -> Iterator[IotCoreStandIn]:
    stand_in = IotCoreStandIn().start()
    yield stand_in
    stand_in.stop()


class Listener:
    def __init__(self, broker: IotCoreStandIn, name: str, topic_filter: str) -> None:
        self.got: list[tuple[str, bool]] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name)
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(topic_filter, 1)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = lambda c, u, m: self.got.append((m.topic, bool(m.retain)))
        self.client.connect(broker.host, broker.mqtt_port)
        self.client.loop_start()
        assert subscribed.wait(10), f"{name}: no SUBACK"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_new_subscriber_gets_only_the_retained_messages_its_own_filter_matches(
        broker: IotCoreStandIn) -> None:
    status = Listener(broker, "status-reader", "dt/acme/+/status")  # holds the filter
    device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pump-1")
    device.connect(broker.host, broker.mqtt_port)
    device.loop_start()
    device.publish("dt/acme/pump-1/status", b'{"state": "online"}', qos=1,
                   retain=True).wait_for_publish(10)
    deadline = time.monotonic() + 10
    while not status.got and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status.got == [("dt/acme/pump-1/status", False)]

    commands = Listener(broker, "command-reader", "cmd/acme/#")
    late = Listener(broker, "late-status-reader", "dt/acme/+/status")
    deadline = time.monotonic() + 10
    while not late.got and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # anything wrongly sent to the command reader arrives by now
    try:
        assert late.got == [("dt/acme/pump-1/status", True)]  # its own filter: retained
        assert commands.got == []  # before the repair: the status, via another's filter
    finally:
        for listener in (status, commands, late):
            listener.close()
        device.disconnect()
        device.loop_stop()
