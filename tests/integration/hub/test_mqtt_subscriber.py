"""The receiver's own MQTT client against real brokers: a private mosquitto
(MQTT 5 and 3.1.1, plain and TLS) and the embedded amqtt fallback (3.1.1).
What the hub relies on: every message in the broker's order with its exact
bytes, QoS 1 acknowledged only when told (what was not comes again on a
persistent session), a silent broker noticed by the keepalive, and the broker's
own reasons (a session taken over) passed on."""

from __future__ import annotations

import functools
import os
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from plugins.local.hub.mqtt_subscriber import Subscriber, SubscriberConfig
from plugins.local.hub.mqtt_wire import MQTT_V5, MQTT_V311
from simulator.broker import find_free_port, find_mosquitto, wait_for_port
from tests.subscriber_recorder import TIMEOUT, Recorder, subscriber, wait_until
from tests.tls_certs import make_pki


def publisher(host: str, port: int, *, protocol: int = MQTT_V5,
              tls: ssl.SSLContext | None = None) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5 if protocol == MQTT_V5
                         else mqtt.MQTTv311)
    if tls is not None:
        client.tls_set_context(tls)
    client.connect(host, port)
    client.loop_start()
    return client


def stream(count: int) -> list[tuple[str, bytes, int]]:
    """Topics, payloads and QoS: small ones, an empty one, one of 300 KB (more
    than one read), QoS 0 and 1 mixed."""
    out = []
    for i in range(count):
        payload = b'{"seq": %d}' % i
        if i == count // 2:
            payload = os.urandom(300_000)
        elif i == count // 3:
            payload = b""
        out.append((f"dt/acme/d{i % 7}/telemetry", payload, i % 2))
    return out


def publish_all(client: mqtt.Client, messages: list[tuple[str, bytes, int]]) -> None:
    infos = [client.publish(topic, payload, qos=qos) for topic, payload, qos in messages]
    for info in infos:
        info.wait_for_publish(TIMEOUT)


def arrives_after(host: str, port: int, recorder: Recorder, payload: bytes) -> None:
    """A QoS 1 message published now reaches the subscriber (its link is back)."""
    pub = publisher(host, port)
    try:
        publish_all(pub, [("dt/acme/d1/telemetry", payload, 1)])
        wait_until(lambda: payload in recorder.payloads(), message=f"{payload!r} after")
    finally:
        pub.loop_stop()
        pub.disconnect()


@pytest.mark.parametrize("protocol", [MQTT_V5, MQTT_V311])
def test_every_message_arrives_in_order_with_its_bytes(mosquitto_broker, protocol) -> None:
    recorder = Recorder()
    rx = subscriber(mosquitto_broker.host, mosquitto_broker.port, recorder, protocol=protocol)
    pub = publisher(mosquitto_broker.host, mosquitto_broker.port, protocol=protocol)
    try:
        sent = stream(600)
        publish_all(pub, [m for m in sent if m[2] == 0])  # one QoS, one ordered stream
        publish_all(pub, [m for m in sent if m[2] == 1])
        expected = [p for _, p, q in sent if q == 0] + [p for _, p, q in sent if q == 1]
        wait_until(lambda: len(recorder.payloads()) >= len(expected),
                   message="every message")
        assert recorder.payloads() == expected
        assert [m[0] for m in recorder.messages[:3]] == \
            ["dt/acme/d0/telemetry", "dt/acme/d2/telemetry", "dt/acme/d4/telemetry"]
        # not manual: QoS 1 is acknowledged by the client, the hub sees no token
        assert all(m[3] == 0 for m in recorder.messages)
        now_ms = time.time() * 1000
        assert all(now_ms - 60_000 < m[2] <= now_ms for m in recorder.messages)
    finally:
        pub.loop_stop()
        pub.disconnect()
        rx.stop()


def test_the_amqtt_fallback_speaks_311_to_it(amqtt_broker) -> None:
    recorder = Recorder()
    rx = subscriber(amqtt_broker.host, amqtt_broker.port, recorder, protocol=MQTT_V311)
    pub = publisher(amqtt_broker.host, amqtt_broker.port, protocol=MQTT_V311)
    try:
        sent = [m for m in stream(200) if len(m[1]) < 1000]
        publish_all(pub, sent)
        wait_until(lambda: len(recorder.payloads()) >= len(sent),
                   message="every message")
        assert sorted(recorder.payloads()) == sorted(p for _, p, _ in sent)
    finally:
        pub.loop_stop()
        pub.disconnect()
        rx.stop()


def test_unacknowledged_qos1_comes_again_on_the_persistent_session(mosquitto_broker) -> None:
    host, port = mosquitto_broker.host, mosquitto_broker.port
    session = {"client_id": f"rx-persist-{os.getpid()}", "clean": False,
               "session_expiry_s": 300, "manual_ack": True}
    first = Recorder()
    rx = subscriber(host, port, first, **session)
    pub = publisher(host, port)
    try:
        publish_all(pub, [(f"dt/acme/d{i}/telemetry", b"m%d" % i, 1) for i in range(10)])
        wait_until(lambda: len(first.messages) >= 10,
                   message="ten messages")
        tokens = [m[3] for m in first.messages]
        assert all(tokens) and len(set(tokens)) == 10
        generation = first.seen("connected")[0]
        assert rx.ack(generation, tokens[:6])
        assert not rx.ack(generation + 1, tokens[6:])  # not this connection's: skipped
        time.sleep(0.5)  # the PUBACKs leave on the client's thread
    finally:
        rx.stop()
    again = Recorder()
    rx = subscriber(host, port, again, **session)
    try:
        wait_until(lambda: len(again.messages) >= 4,
                   message="the unacknowledged four")
        time.sleep(0.5)
        assert again.payloads() == [b"m6", b"m7", b"m8", b"m9"]
        rx.ack(again.seen("connected")[0], [m[3] for m in again.messages])
    finally:
        pub.loop_stop()
        pub.disconnect()
        rx.stop()


def test_a_session_taken_over_is_a_loss_and_the_session_comes_back(mosquitto_broker) -> None:
    """mosquitto 2.0 closes the connection without a DISCONNECT (a broker that
    gives a reason, such as EMQX's "Session taken over", has it passed on:
    tests/unit/hub/test_mqtt_wire.py)."""
    recorder = Recorder()
    client_id = f"rx-taken-{os.getpid()}"
    rx = subscriber(mosquitto_broker.host, mosquitto_broker.port, recorder, client_id=client_id)
    # The thief's network loop runs on this thread only while it takes the
    # session: a background loop would reconnect it when the subscriber takes
    # the session back, and the two would keep taking it from each other.
    thief = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    try:
        thief.connect(mosquitto_broker.host, mosquitto_broker.port)
        wait_until(lambda: thief.loop(0.05) == mqtt.MQTT_ERR_SUCCESS and thief.is_connected(),
                   message="the thief's session")
        lost = wait_until(lambda: recorder.seen("lost"),
                          message="the loss")
        assert lost[0] == "the broker closed the connection"
        thief.disconnect()
        # Messages published between the CONNACK and the SUBACK are not this
        # clean session's: the session is back once it has subscribed again.
        wait_until(lambda: recorder.seen("connected")[-1] >= 2
                   and len(recorder.seen("subscribed")) >= 2,
                   message="the session back")
        arrives_after(mosquitto_broker.host, mosquitto_broker.port, recorder, b"back")
    finally:
        rx.stop()


@dataclass
class OwnBroker:
    process: subprocess.Popen[bytes]
    port: int
    tls_port: int
    ca: Path


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[OwnBroker]:
    """A mosquitto this test may freeze (SIGSTOP): plain and TLS listeners."""
    mosquitto = find_mosquitto()
    if mosquitto is None:
        pytest.fail("mosquitto is not installed; run `make test`")
    pki = make_pki(tmp_path)
    port, tls_port = find_free_port(), find_free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                    f"listener {tls_port} 127.0.0.1\nallow_anonymous true\n"
                    f"cafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
                    # as root mosquitto would become "mosquitto" before reading the key
                    + ("user root\n" if os.geteuid() == 0 else ""))
    process = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        assert wait_for_port("127.0.0.1", port, 10) and wait_for_port("127.0.0.1", tls_port, 10)
        yield OwnBroker(process, port, tls_port, pki.ca)
    finally:
        os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        process.wait(10)


def test_messages_come_over_tls(own_mosquitto: OwnBroker) -> None:
    tls_port = own_mosquitto.tls_port
    factory = functools.partial(ssl.create_default_context, cafile=str(own_mosquitto.ca))
    recorder = Recorder()
    rx = subscriber("localhost", tls_port, recorder, tls_factory=factory, keepalive=2)
    pub = publisher("localhost", tls_port, tls=factory())
    try:
        sent = stream(300)  # a 300 KB payload among them: many TLS records
        publish_all(pub, [m for m in sent if m[2] == 0])
        expected = [p for _, p, q in sent if q == 0]
        wait_until(lambda: len(recorder.payloads()) >= len(expected),
                   message="every message")
        assert recorder.payloads() == expected
        # idle: pings and their answers over TLS keep the one connection
        time.sleep(6)
        assert recorder.seen("connected") == [1]
        assert recorder.seen("lost") == []
    finally:
        pub.loop_stop()
        pub.disconnect()
        rx.stop()
    # a broker whose certificate the context does not trust: never connected
    untrusting = Recorder()
    bad = Subscriber(SubscriberConfig(host="localhost", port=tls_port, client_id="rx-untrusting",
                                      filters=["#"], tls_factory=ssl.create_default_context),
                     **untrusting.kwargs())
    bad.start()
    failed = wait_until(lambda: untrusting.seen("failed"), message="the failed attempt")
    bad.stop()
    assert untrusting.seen("connected") == []
    assert failed[0].startswith(f"cannot connect to localhost:{tls_port}: ")
    assert "CERTIFICATE_VERIFY_FAILED" in failed[0]


def test_a_silent_broker_is_noticed_by_the_keepalive_and_the_link_comes_back(
        own_mosquitto: OwnBroker) -> None:
    process, port = own_mosquitto.process, own_mosquitto.port
    recorder = Recorder()
    # a persistent session: should a loaded machine cost the new link too, the
    # message below still comes on the one after
    rx = subscriber("127.0.0.1", port, recorder, keepalive=1, clean=False,
                    session_expiry_s=60, client_id=f"rx-silent-{os.getpid()}")
    try:
        assert recorder.seen("connected") == [1]
        os.kill(process.pid, signal.SIGSTOP)  # the socket stays open, nothing answers
        frozen = time.monotonic()
        lost = wait_until(lambda: recorder.seen("lost"), timeout=10,
                          message="the loss")
        assert lost[0] == "no answer from the broker for 1 s"
        assert time.monotonic() - frozen < 5
        os.kill(process.pid, signal.SIGCONT)
        wait_until(lambda: recorder.seen("connected")[:2] == [1, 2], timeout=15,
                   message="the second connection")
        arrives_after("127.0.0.1", port, recorder, b"after")
    finally:
        rx.stop()
