"""MqttLink says "subscribed" only once the broker acknowledged every filter:
a message published right after ``wait_subscribed`` reaches the link. Tests
and command-line clients used to sleep a while after ``wait_connected``, which
returns before the SUBSCRIBE is even answered."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from plugins.local.hub.mqtt_link import MqttLink

ROUNDS = 10


def test_a_message_published_right_after_wait_subscribed_arrives(mosquitto_broker) -> None:
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex}")
    publisher.connect(mosquitto_broker.host, mosquitto_broker.port)
    publisher.loop_start()
    try:
        for round_ in range(ROUNDS):
            topic = f"subscribed-test/{uuid.uuid4().hex}"
            got = threading.Event()
            link = MqttLink(mosquitto_broker.host, mosquitto_broker.port,
                            client_id=f"link-{round_}-{uuid.uuid4().hex[:8]}",
                            filters=[f"{topic}/#", "subscribed-test/other"],
                            on_message=lambda _t, _p, got=got: got.set())
            assert not link.subscribed_event.is_set()
            link.start()
            try:
                assert link.wait_subscribed(10)
                assert link.connected_event.is_set()
                publisher.publish(f"{topic}/x", b"1", qos=1).wait_for_publish(10)
                assert got.wait(10), f"round {round_}: published after SUBACK, not received"
            finally:
                link.stop()
            assert not link.subscribed_event.is_set(), "still 'subscribed' after stop"
    finally:
        publisher.disconnect()
        publisher.loop_stop()
