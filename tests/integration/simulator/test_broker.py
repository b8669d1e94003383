"""The embedded broker launcher: both kinds carry retained messages and wills."""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulator.broker import BrokerError, EmbeddedBroker, find_free_port, wait_for_port


def _client(broker, client_id, **kw):
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, **kw)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def _collect(broker, topic, seconds=1.5):
    got = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{time.monotonic_ns()}")
    client.on_message = lambda c, u, m: got.append((m.topic, m.payload, m.retain))
    client.connect(broker.host, broker.port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    time.sleep(seconds)
    client.loop_stop()
    client.disconnect()
    return got


def test_retained_message_and_last_will(any_broker):
    device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="will-test")
    device.will_set("dt/acme/will-test/status", b'{"state":"offline"}', qos=1, retain=True)
    device.connect(any_broker.host, any_broker.port, keepalive=5)
    device.loop_start()
    device.publish("dt/acme/will-test/status", b'{"state":"online"}', qos=1,
                   retain=True).wait_for_publish(5)
    assert _collect(any_broker, "dt/acme/will-test/status", 1.0) == [
        ("dt/acme/will-test/status", b'{"state":"online"}', True)]
    # Kill the link without DISCONNECT: the broker must publish the will.
    device.loop_stop()
    device.socket().close()
    deadline = time.monotonic() + 15
    seen = []
    while time.monotonic() < deadline:
        seen = _collect(any_broker, "dt/acme/will-test/status", 1.0)
        if seen and seen[0][1] == b'{"state":"offline"}':
            break
    assert seen and seen[0][1] == b'{"state":"offline"}'


def test_stop_frees_the_port():
    broker = EmbeddedBroker(prefer="mosquitto", anonymous=True).start()
    port = broker.port
    assert broker.kind == "mosquitto"
    broker.stop()
    assert not wait_for_port("127.0.0.1", port, 0.5)


def test_amqtt_fallback_runs_in_process():
    with EmbeddedBroker(prefer="amqtt", anonymous=True) as broker:
        assert broker.kind == "amqtt"
        assert wait_for_port("127.0.0.1", broker.port, 1)


def test_port_in_use_is_reported_clearly(mosquitto_broker):
    expected = f"did not start on port {mosquitto_broker.port}: the port is already in use"
    with pytest.raises(BrokerError, match=expected):
        EmbeddedBroker(prefer="mosquitto", port=mosquitto_broker.port,
                       anonymous=True).start(timeout_s=2)


def test_a_port_it_chose_and_lost_before_starting_is_chosen_again(mosquitto_broker):
    # two benches choosing ports at once: the one it picked is taken before it binds
    broker = EmbeddedBroker(prefer="mosquitto", anonymous=True)
    broker.port = mosquitto_broker.port
    with broker:
        assert broker.port != mosquitto_broker.port
        assert wait_for_port("127.0.0.1", broker.port, 2)


def test_free_port_is_bindable():
    port = find_free_port()
    assert 1024 < port < 65536


def command_published_while_away_is_delivered(host: str, port: int) -> list[tuple[bytes, bool]]:
    """A device with a persistent session loses its link without DISCONNECT (a
    reboot); a QoS 1 command published while it is away must reach it when it
    connects again, with the broker saying its session was kept. Returns what
    the device received and the session-present flag of each CONNACK."""
    import socket
    import threading

    received: list[bytes] = []
    present: list[bool] = []
    subscribed = threading.Event()
    device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="persistent-device",
                         clean_session=False)
    device.on_connect = lambda c, u, flags, r, p: (present.append(flags.session_present),
                                                   c.subscribe("cmd/acme/persistent-device/req",
                                                               qos=1))
    device.on_subscribe = lambda *a: subscribed.set()
    device.on_message = lambda c, u, m: received.append(bytes(m.payload))
    device.reconnect_delay_set(1, 1)
    device.connect(host, port, keepalive=10)
    device.loop_start()
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="console-sender")
    sender.connect(host, port)
    sender.loop_start()
    try:
        assert subscribed.wait(10)
        device.socket().shutdown(socket.SHUT_RDWR)  # the reboot: no DISCONNECT
        time.sleep(0.1)
        sender.publish("cmd/acme/persistent-device/req", b"reboot", qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sender.disconnect()
        sender.loop_stop()
        device.disconnect()
        device.loop_stop()
    return list(zip(received, present[1:2], strict=False))


def test_a_persistent_session_gets_what_was_published_while_it_was_away(any_broker):
    assert command_published_while_away_is_delivered(any_broker.host, any_broker.port) \
        == [(b"reboot", True)]
