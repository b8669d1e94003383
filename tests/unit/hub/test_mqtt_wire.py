"""The receiver's MQTT codec: the packets it writes, and what it makes of a
stream that arrives in arbitrary pieces (a packet split across reads, lengths of
several bytes, MQTT 5 properties, bad input)."""

from __future__ import annotations

import contextlib
import random
import struct

import pytest

from plugins.local.hub import mqtt_wire as wire
from plugins.local.hub.mqtt_subscriber import topic_matches


def publish(topic: str, payload: bytes, *, qos: int = 0, mid: int = 0,
            props: bytes | None = None) -> bytes:
    """A PUBLISH as a broker writes it (props: MQTT 5 properties, already encoded)."""
    raw = topic.encode()
    body = struct.pack("!H", len(raw)) + raw
    if qos:
        body += struct.pack("!H", mid)
    if props is not None:
        body += wire._varint(len(props)) + props
    body += payload
    return bytes((0x30 | qos << 1,)) + wire._varint(len(body)) + body


def test_a_connect_packet_says_what_the_hub_asked_for() -> None:
    packet = wire.connect_packet("hub-rx", protocol=wire.MQTT_V5, clean=False, keepalive=30,
                                 username="hub", password="pw", session_expiry_s=3600)
    # type, length, "MQTT", level 5, flags (user, password, not clean), keepalive
    assert packet[0] == 0x10
    assert packet[2:10] == b"\x00\x04MQTT\x05\xc0"
    assert packet[10:12] == b"\x00\x1e"
    # properties: the session expiry interval (0x11) of an hour
    assert packet[12:18] == b"\x05\x11" + struct.pack("!I", 3600)
    assert packet.endswith(b"\x00\x06hub-rx\x00\x03hub\x00\x02pw")
    clean = wire.connect_packet("c", protocol=wire.MQTT_V311, clean=True, keepalive=10)
    assert clean == b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x0a\x00\x01c"


def test_a_subscribe_and_acks() -> None:
    assert wire.subscribe_packet(1, ["a/+", "b/#"], 1, protocol=wire.MQTT_V311) == \
        b"\x82\x0e\x00\x01\x00\x03a/+\x01\x00\x03b/#\x01"
    assert wire.subscribe_packet(1, ["a"], 0, protocol=wire.MQTT_V5) == \
        b"\x82\x07\x00\x01\x00\x00\x01a\x00"
    assert wire.puback_packets([1, 65535]) == b"\x40\x02\x00\x01\x40\x02\xff\xff"


def test_every_split_of_a_stream_gives_the_same_messages_in_order() -> None:
    big = bytes(range(256)) * 700  # 179,200 bytes: a three-byte length
    stream = (publish("dt/a/d1/telemetry", b'{"seq":1}')
              + publish("dt/a/d2/telemetry", b"", qos=1, mid=7)
              + b"\xd0\x00"  # PINGRESP between two messages
              + publish("dt/a/d3/telemetry", big, qos=1, mid=65535))
    expected = [("dt/a/d1/telemetry", b'{"seq":1}', 5, 0), ("dt/a/d2/telemetry", b"", 5, 7),
                ("dt/a/d3/telemetry", big, 5, 65535)]
    whole = wire.parse(stream, wire.MQTT_V311, 5)
    assert whole.messages == expected
    assert [c.kind for c in whole.controls] == [wire.PINGRESP]
    assert whole.rest == len(stream)
    for cut in [*range(40), len(stream) - 100, len(stream) - 1]:
        first = wire.parse(stream[:cut], wire.MQTT_V311, 5)
        rest = stream[first.rest:]
        second = wire.parse(rest, wire.MQTT_V311, 5)
        assert first.messages + second.messages == expected, cut
        assert second.rest == len(rest)


def test_mqtt5_properties_are_skipped_short_and_long() -> None:
    short = b"\x01\x01"  # payload format indicator
    long = b"\x26" + b"\x00\x01k" + struct.pack("!H", 200) + b"v" * 200  # a user property
    stream = (publish("t/1", b"one", props=short) + publish("t/2", b"two", qos=1, mid=3,
                                                             props=long)
              + publish("t/3", b"three", props=b""))
    parsed = wire.parse(stream, wire.MQTT_V5, 9)
    assert parsed.messages == [("t/1", b"one", 9, 0), ("t/2", b"two", 9, 3),
                               ("t/3", b"three", 9, 0)]


def test_bad_input_from_a_broker_is_named() -> None:
    with pytest.raises(wire.WireError, match="not UTF-8"):
        wire.parse(publish("ok", b"x").replace(b"ok", b"\xff\xfe"), wire.MQTT_V311)
    with pytest.raises(wire.WireError, match="QoS 2"):
        wire.parse(publish("t", b"x", qos=2, mid=1), wire.MQTT_V311)
    with pytest.raises(wire.WireError, match="four bytes"):
        wire.parse(b"\x30\xff\xff\xff\xff\x01", wire.MQTT_V311)


def test_connack_suback_and_disconnect_say_why() -> None:
    assert wire.connack(b"\x01\x00", wire.MQTT_V311) == wire.ConnAck(True, 0)
    refused = wire.connack(b"\x00\x87\x08\x1f\x00\x05nope!", wire.MQTT_V5)
    assert (refused.code, refused.reason) == (0x87, "nope!")
    assert wire.reason_text(refused.code) == "Not authorized"
    assert wire.reason_text(0x80, wire.MQTT_V311) == "Failure"
    assert wire.reason_text(0x80) == "Unspecified error"
    assert wire.connack(b"\x00\x00\x03\x13\x00\x3c", wire.MQTT_V5).server_keepalive == 60
    assert wire.suback(b"\x00\x01\x00\x01\x80", wire.MQTT_V5) == (1, [1, 0x80])
    assert wire.suback(b"\x00\x01\x01", wire.MQTT_V311) == (1, [1])
    assert wire.disconnect_reason(b"\x8e\x00", wire.MQTT_V5) == \
        "the broker disconnected: Session taken over"
    with pytest.raises(wire.WireError, match="unknown property"):
        wire.connack(b"\x00\x00\x02\x7f\x00", wire.MQTT_V5)


@pytest.mark.parametrize(("topic_filter", "topic", "matches"), [
    ("dt/+/+/status", "dt/acme/d1/status", True),
    ("dt/+/+/status", "dt/acme/d1/telemetry", False),
    ("dt/#", "dt", True),
    ("dt/#", "dt/a/b", True),
    ("+/x", "$SYS/x", False),
    ("dt/+", "dt/a/b", False),
    ("dt/a/b", "dt/a", False),
])
def test_topic_filters(topic_filter: str, topic: str, matches: bool) -> None:
    assert topic_matches(topic_filter, topic) is matches


def test_mangled_streams_are_wire_errors_or_whole_messages_never_a_crash() -> None:
    """Every byte of a valid stream changed, cut or dropped in turn (and random
    bytes): parse returns or raises WireError, nothing else (the subscriber
    drops a connection on WireError; any other exception would end its thread)."""
    rng = random.Random(7)
    for protocol, props in ((wire.MQTT_V5, b"\x01\x01"), (wire.MQTT_V311, None)):
        stream = (publish("dt/a/d1/telemetry", b'{"seq":1}', props=props)
                  + publish("dt/a/d2/telemetry", b"x" * 300, qos=1, mid=9, props=props))
        cases = [stream[:i] + bytes((b,)) + stream[i + 1:]
                 for i in range(len(stream)) for b in (0, 0x7F, 0x80, 0xFF)]
        cases += [stream[:i] + stream[i + 1:] for i in range(len(stream))]
        cases += [bytes(rng.randrange(256) for _ in range(rng.randrange(2, 64)))
                  for _ in range(3000)]
        for data in cases:
            try:
                parsed = wire.parse(data, protocol)
            except wire.WireError:
                continue
            assert 0 <= parsed.rest <= len(data)
            for control in parsed.controls:
                for read in (wire.connack, wire.suback, wire.disconnect_reason):
                    with contextlib.suppress(wire.WireError):
                        read(control.body, protocol)


def test_a_bad_packet_keeps_the_whole_messages_before_it() -> None:
    good = publish("t/1", b"one") + publish("t/2", b"two")
    with pytest.raises(wire.WireError) as raised:
        wire.parse(good + publish("t/3", b"x", qos=2, mid=1), wire.MQTT_V311, 4)
    assert raised.value.messages == [("t/1", b"one", 4, 0), ("t/2", b"two", 4, 0)]


def test_a_packets_declared_end_is_known_from_its_header() -> None:
    big = publish("t", b"x" * 200_000)
    assert wire.declared_end(big[:1]) is None
    assert wire.declared_end(big[:3]) is None  # the length's third byte not there yet
    assert wire.declared_end(big[:4]) == len(big)
    assert wire.declared_end(b"\xd0\x00") == 2
