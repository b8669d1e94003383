"""The MQTT packets a subscriber exchanges, as bytes (3.1.1 and 5).

Why the receiver reads MQTT itself: paho parses each PUBLISH with three or more
``recv`` calls (the type byte, the length bytes one at a time, the rest), builds
an ``MQTTMessage`` and matches it against its callbacks: ~35 µs of CPU a
message, as much as a whole subscriber that also decodes the JSON. Here one
``recv`` brings hundreds of packets and :func:`parse` walks them in one loop,
slicing out what the hub needs (topic, payload, packet id): a few µs a message
(docs/benchmarks.md, "The receiver reads MQTT itself").

Only what a subscriber that subscribes at QoS 0 or 1 needs: CONNECT, SUBSCRIBE,
PUBACK, PINGREQ and DISCONNECT out; CONNACK, SUBACK, PUBLISH, PINGRESP and
DISCONNECT in. Anything else the broker sends is a protocol error
(:class:`WireError`, the connection is dropped and made again).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

MQTT_V311, MQTT_V5 = 4, 5
MAX_REMAINING = 268_435_455  # the protocol's largest packet body

CONNACK, PUBLISH, PUBACK, SUBACK, PINGRESP, DISCONNECT = 2, 3, 4, 9, 13, 14

# CONNACK return codes of 3.1.1 and the reason codes of 5 the hub may meet
# (the texts are the specifications'; what a person reads in the status line).
REASONS: dict[int, str] = {
    0: "Success",
    1: "Unacceptable protocol version", 2: "Identifier rejected", 3: "Server unavailable",
    4: "Bad user name or password", 5: "Not authorized",
    0x80: "Unspecified error", 0x81: "Malformed packet", 0x82: "Protocol error",
    0x83: "Implementation specific error", 0x84: "Unsupported protocol version",
    0x85: "Client identifier not valid", 0x86: "Bad user name or password",
    0x87: "Not authorized", 0x88: "Server unavailable", 0x89: "Server busy",
    0x8A: "Banned", 0x8B: "Server shutting down", 0x8C: "Bad authentication method",
    0x8D: "Keep alive timeout", 0x8E: "Session taken over", 0x8F: "Topic filter invalid",
    0x90: "Topic name invalid", 0x93: "Receive maximum exceeded",
    0x94: "Topic alias invalid", 0x95: "Packet too large", 0x97: "Quota exceeded",
    0x98: "Administrative action", 0x99: "Payload format invalid",
    0x9A: "Retain not supported", 0x9B: "QoS not supported", 0x9C: "Use another server",
    0x9D: "Server moved", 0x9E: "Shared subscriptions not supported",
    0x9F: "Connection rate exceeded", 0xA0: "Maximum connect time",
    0xA1: "Subscription identifiers not supported",
    0xA2: "Wildcard subscriptions not supported",
}
# 3.1.1's CONNACK codes are small numbers, 5's are 0x80 and up: one table serves both.


def reason_text(code: int, protocol: int = MQTT_V5) -> str:
    if code == 0x80 and protocol == MQTT_V311:
        return "Failure"  # 3.1.1's only refusal in a SUBACK
    return REASONS.get(code, f"reason code {code:#04x}")


class WireError(Exception):
    """The broker sent something this subscriber cannot take: the connection is
    not usable any more (it is dropped and made again). ``messages``: the whole
    messages :func:`parse` read before the bad packet, to be handed over still."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.messages: list[tuple[str, bytes, int, int]] = []


# ------------------------------------------------------------------ encoding
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _string(s: str) -> bytes:
    raw = s.encode("utf-8")
    return struct.pack("!H", len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _varint(len(body)) + body


def connect_packet(client_id: str, *, protocol: int, clean: bool, keepalive: int,
                   username: str | None = None, password: str | None = None,
                   session_expiry_s: int = 0) -> bytes:
    """CONNECT. With 5, ``session_expiry_s`` is how long the broker keeps the
    session (and queues QoS 1 for it) after the connection ends."""
    flags = 0x02 if clean else 0
    if username:
        flags |= 0x80
        if password is not None:
            flags |= 0x40
    body = b"\x00\x04MQTT" + bytes((protocol, flags)) + struct.pack("!H", keepalive)
    if protocol == MQTT_V5:
        props = b"\x11" + struct.pack("!I", max(0, session_expiry_s)) if session_expiry_s \
            else b""
        body += _varint(len(props)) + props
    body += _string(client_id)
    if username:
        body += _string(username)
        if password is not None:
            raw = password.encode("utf-8")
            body += struct.pack("!H", len(raw)) + raw
    return _packet(0x10, body)


def subscribe_packet(packet_id: int, filters: list[str], qos: int, *, protocol: int) -> bytes:
    body = struct.pack("!H", packet_id)
    if protocol == MQTT_V5:
        body += b"\x00"  # no properties
    for topic_filter in filters:
        body += _string(topic_filter) + bytes((qos,))
    return _packet(0x82, body)


def puback_packets(mids: list[int]) -> bytes:
    """PUBACKs for these packet ids, as one write (the success code is implied
    in 5 when the packet has no more than the id)."""
    pack = struct.Struct("!BBH").pack
    return b"".join(pack(0x40, 2, mid) for mid in mids)


PINGREQ = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"


# ------------------------------------------------------------------ decoding
@dataclass(slots=True)
class Control:
    """A packet other than PUBLISH, as :func:`parse` found it."""

    kind: int
    body: bytes


@dataclass(slots=True)
class Parsed:
    """What one pass of :func:`parse` over the buffer found: PUBLISH messages as
    (topic, payload, received_ms, packet id: 0 for QoS 0) in the broker's order,
    the other packets, and where the unparsed rest (an incomplete packet) begins."""

    messages: list[tuple[str, bytes, int, int]] = field(default_factory=list)
    controls: list[Control] = field(default_factory=list)
    rest: int = 0


def parse(data: bytes, protocol: int, received_ms: int = 0) -> Parsed:
    """Every whole packet in ``data``; its messages stamped ``received_ms`` (one
    read's packets came together). A PUBLISH's topic that is not UTF-8, or a
    packet longer than the protocol allows, is a :class:`WireError` that carries
    the messages before it."""
    out = Parsed()
    try:
        _parse(data, protocol, received_ms, out)
    except WireError as exc:
        exc.messages = out.messages
        raise
    return out


def declared_end(data: bytes) -> int | None:
    """Where the first packet in ``data`` will end, once its fixed header is
    all there (so a large packet arriving in pieces is parsed once, whole)."""
    length, shift, i = 0, 0, 1
    while i < len(data):
        byte = data[i]
        length |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            return i + length
        shift += 7
        if shift > 21:
            raise WireError("a packet's length runs over four bytes")
    return None


def _parse(data: bytes, protocol: int, received_ms: int, out: Parsed) -> None:
    messages = out.messages
    append = messages.append
    v5 = protocol == MQTT_V5
    end = len(data)
    pos = 0
    while end - pos >= 2:
        first = data[pos]
        # the remaining length: 1 to 4 bytes, 7 bits each
        byte = data[pos + 1]
        if byte < 0x80:
            length, start = byte, pos + 2
        else:
            length, shift, i = byte & 0x7F, 7, pos + 2
            while True:
                if i >= end:
                    out.rest = pos
                    return
                byte = data[i]
                length |= (byte & 0x7F) << shift
                i += 1
                if byte < 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise WireError("a packet's length runs over four bytes")
            start = i
        stop = start + length
        if stop > end:
            break
        if first >> 4 == PUBLISH:
            qos = (first >> 1) & 3
            if length < 2:
                raise WireError(f"a PUBLISH of {length} bytes has no topic")
            topic_end = start + 2 + ((data[start] << 8) | data[start + 1])
            # what follows the topic (packet id, properties) must fit in the packet
            need = topic_end + (2 if qos else 0) + (1 if v5 else 0)
            if need > stop:
                raise WireError(f"a PUBLISH's topic and header run {need - stop} bytes past "
                                f"its length of {length}")
            try:
                topic = data[start + 2:topic_end].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise WireError(f"a PUBLISH topic is not UTF-8: {exc}") from None
            if qos:
                if qos > 1:
                    raise WireError("the broker sent QoS 2 to a QoS 1 subscription")
                mid = (data[topic_end] << 8) | data[topic_end + 1]
                p = topic_end + 2
            else:
                mid, p = 0, topic_end
            if v5:  # properties: skipped (no topic alias was offered)
                byte = data[p]
                if byte < 0x80:
                    p += 1 + byte
                else:
                    p, props = _read_varint_within(data, p, stop)
                    p += props
                if p > stop:
                    raise WireError(f"a PUBLISH's properties run {p - stop} bytes past its "
                                    f"length of {length}")
            append((topic, data[p:stop], received_ms, mid))
        else:
            out.controls.append(Control(first >> 4, data[start:stop]))
        pos = stop
    out.rest = pos


def _read_varint_within(data: bytes, pos: int, stop: int) -> tuple[int, int]:
    """A variable byte integer that must end before ``stop`` (its packet's end)."""
    value, shift = 0, 0
    while True:
        if pos >= stop:
            raise WireError("a variable byte integer runs past the end of its packet")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return pos, value
        shift += 7
        if shift > 21:
            raise WireError("a variable byte integer runs over four bytes")


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    return _read_varint_within(data, pos, len(data))


# property identifier -> how its value is encoded (MQTT 5, section 2.2.2.2)
_BYTE, _U16, _U32, _VARINT, _UTF8, _BINARY, _PAIR = range(7)
_PROPERTY_TYPES: dict[int, int] = {
    0x01: _BYTE, 0x02: _U32, 0x03: _UTF8, 0x08: _UTF8, 0x09: _BINARY, 0x0B: _VARINT,
    0x11: _U32, 0x12: _UTF8, 0x13: _U16, 0x15: _UTF8, 0x16: _BINARY, 0x17: _BYTE,
    0x18: _U32, 0x19: _BYTE, 0x1A: _UTF8, 0x1C: _UTF8, 0x1F: _UTF8, 0x21: _U16,
    0x22: _U16, 0x23: _U16, 0x24: _BYTE, 0x25: _BYTE, 0x26: _PAIR, 0x27: _U32,
    0x28: _BYTE, 0x29: _BYTE, 0x2A: _BYTE,
}


def properties(body: bytes, pos: int) -> tuple[dict[int, Any], int]:
    """MQTT 5 properties at ``pos``: {identifier: value} (a user property's
    last pair) and where they end."""
    try:
        return _properties(body, pos)
    except (IndexError, struct.error):
        raise WireError("properties run past the end of the packet") from None


def _properties(body: bytes, pos: int) -> tuple[dict[int, Any], int]:
    pos, length = _read_varint(body, pos)
    stop = pos + length
    if stop > len(body):
        raise WireError("properties run past the end of the packet")
    found: dict[int, Any] = {}
    while pos < stop:
        ident = body[pos]
        pos += 1
        kind = _PROPERTY_TYPES.get(ident)
        if kind is None:
            raise WireError(f"unknown property {ident:#04x}")
        if kind == _BYTE:
            value: Any = body[pos]
            pos += 1
        elif kind == _U16:
            value = (body[pos] << 8) | body[pos + 1]
            pos += 2
        elif kind == _U32:
            value = struct.unpack_from("!I", body, pos)[0]
            pos += 4
        elif kind == _VARINT:
            pos, value = _read_varint(body, pos)
        else:
            count = 2 if kind == _PAIR else 1
            parts = []
            for _ in range(count):
                size = (body[pos] << 8) | body[pos + 1]
                parts.append(body[pos + 2:pos + 2 + size])
                pos += 2 + size
            if kind == _BINARY:
                value = parts[0]
            else:
                texts = [p.decode("utf-8", "replace") for p in parts]
                value = tuple(texts) if kind == _PAIR else texts[0]
        found[ident] = value
    if pos != stop:
        raise WireError("a property runs past the end of the properties")
    return found, stop


@dataclass(slots=True)
class ConnAck:
    session_present: bool
    code: int
    server_keepalive: int | None = None
    reason: str = ""  # the broker's own words (5's reason string), when it said any


def connack(body: bytes, protocol: int) -> ConnAck:
    if len(body) < 2:
        raise WireError("a CONNACK shorter than two bytes")
    ack = ConnAck(bool(body[0] & 1), body[1])
    if protocol == MQTT_V5 and len(body) > 2:
        props, _ = properties(body, 2)
        ack.server_keepalive = props.get(0x13)
        ack.reason = str(props.get(0x1F, ""))
    return ack


def suback(body: bytes, protocol: int) -> tuple[int, list[int]]:
    """The packet id and one code per filter (0-2 granted, 0x80 and up refused)."""
    if len(body) < 3:
        raise WireError("a SUBACK without reason codes")
    packet_id = (body[0] << 8) | body[1]
    pos = 2
    if protocol == MQTT_V5:
        _, pos = properties(body, pos)
    return packet_id, list(body[pos:])


def disconnect_reason(body: bytes, protocol: int) -> str:
    """What a broker's DISCONNECT (5 only) says."""
    if not body:
        return "the broker disconnected"
    text = reason_text(body[0])
    if protocol == MQTT_V5 and len(body) > 1:
        props, _ = properties(body, 1)
        if props.get(0x1F):
            text = f"{text} ({props[0x1F]})"
    return f"the broker disconnected: {text}"
