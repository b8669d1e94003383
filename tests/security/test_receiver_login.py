"""The hub's receiver (its own MQTT client, in a child process) logs in as the
hub on the team broker and on the embedded fallback, with the same files: a
wrong password is refused with the broker's reason and never connects; the
hub's login gets what devices publish; a device's login does not get another
device's telemetry (mosquitto withholds each message, amqtt refuses the
subscription and the receiver says so)."""

from __future__ import annotations

import json
import time

from plugins.local.hub.mqtt_subscriber import Subscriber, SubscriberConfig
from plugins.local.hub.mqtt_wire import MQTT_V5, MQTT_V311
from tests.security.conftest import ORG, SecureBroker, telemetry
from tests.subscriber_recorder import Recorder, subscriber, wait_until

FILTER = "dt/+/+/telemetry"


def test_a_wrong_password_is_refused_with_the_brokers_reason(broker: SecureBroker) -> None:
    recorder = Recorder()
    user, _ = broker.login("hub")
    wrong = Subscriber(SubscriberConfig(
        host=broker.host, port=broker.port, client_id="sec-rx-wrong", filters=[FILTER],
        protocol=MQTT_V5 if broker.v5 else MQTT_V311, username=user,
        password="not-the-password"), **recorder.kwargs())
    wrong.start()
    try:
        refused = wait_until(lambda: recorder.seen("refused"),
                             message="the refusal")
        assert refused[0] in ("Not authorized", "Bad user name or password")
        assert recorder.seen("connected") == []
    finally:
        wrong.stop()


def test_the_hubs_login_receives_and_a_devices_does_not_read_others(
        broker: SecureBroker) -> None:
    protocol = MQTT_V5 if broker.v5 else MQTT_V311
    hub_user, hub_password = broker.login("hub")
    hub_rx = Recorder()
    rx = subscriber(broker.host, broker.port, hub_rx, filters=[FILTER], protocol=protocol,
                    username=hub_user, password=hub_password, qos=1)
    spy_user, spy_password = broker.login("attacker")
    spy = Recorder()
    spying = subscriber(broker.host, broker.port, spy, client_id="attacker", filters=[FILTER],
                        protocol=protocol, username=spy_user, password=spy_password, qos=1)
    try:
        assert hub_rx.seen("subscribed") == [""]
        if broker.kind == "amqtt":
            assert spy.seen("subscribed") == [
                f"broker refused the subscription to {FILTER}: Failure"]
        victim = broker.as_("victim")
        body = telemetry("victim", 1, temperature=20.5)
        victim.publish(f"dt/{ORG}/victim/telemetry", body)
        wait_until(lambda: hub_rx.payloads() == [body],
                   message="the victim's reading at the hub")
        assert json.loads(hub_rx.payloads()[0])["metrics"] == {"temperature": 20.5}
        time.sleep(1.0)
        assert spy.payloads() == []
    finally:
        rx.stop()
        spying.stop()
