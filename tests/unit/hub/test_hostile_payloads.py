"""Every decoder of outside input turns anything it is given into a value or a
``ProtocolError`` with a reason: never a RecursionError, a ValueError from a
huge integer, a UnicodeDecodeError, an OverflowError."""

from __future__ import annotations

import json

import pytest

from core.protocol.payloads import (
    MAX_SEQ,
    ProtocolError,
    decode_command_request,
    decode_command_response,
    decode_json_object,
    decode_status,
    decode_telemetry,
)

NOW = 1_795_000_000_000


def telemetry(**fields):
    body = {"device_id": "p1", "seq": 1, "ts": NOW, "type": "pump", "fw": "1.0.0",
            "metrics": {"t": 1.0}, "uptime": 5}
    body.update(fields)
    return json.dumps(body).encode()


def reason_of(call, *args, **kwargs):
    with pytest.raises(ProtocolError) as info:
        call(*args, **kwargs)
    return info.value.reason


DEEP = b'{"a":' * 20_000 + b"1" + b"}" * 20_000  # 120 KB: under the size limit
HUGE_INT = b'{"seq":' + b"9" * 5000 + b"}"


@pytest.mark.parametrize("document", [False, True])
def test_hostile_json_is_a_protocol_error(document):
    assert reason_of(decode_json_object, DEEP, "x", document=document) == "too_deep"
    assert reason_of(decode_json_object, DEEP[:-1], "x", document=document) in (
        "too_deep", "malformed_json")
    assert reason_of(decode_json_object, HUGE_INT, "x", document=document) in (
        "malformed_json", "out_of_range")
    assert reason_of(decode_json_object, b'{"a":"\xff\xfe"}', "x",
                     document=document) == "invalid_encoding"
    assert reason_of(decode_json_object, b"\xef\xbb\xbf[1]", "x", document=document) in (
        "not_object", "malformed_json", "invalid_encoding")


def test_documents_refuse_what_no_store_can_hold():
    assert reason_of(decode_json_object, b'{"v":1e999}', "x", document=True) == "non_finite"
    assert reason_of(decode_json_object, b'{"v":' + b"1" * 25 + b"}", "x",
                     document=True) == "out_of_range"
    assert reason_of(decode_json_object, b'{"v":"\\ud800"}', "x",
                     document=True) == "invalid_encoding"
    nested = b'{"a":' * 40 + b"1" + b"}" * 40  # parses, but deeper than any document needs
    assert reason_of(decode_json_object, nested, "x", document=True) == "too_deep"
    assert decode_json_object(b'{"v":9223372036854775807}', "x", document=True) == {
        "v": 2**63 - 1}


@pytest.mark.parametrize(("fields", "reason"), [
    ({"seq": MAX_SEQ + 1}, "out_of_range"),
    ({"seq": 2**63}, "out_of_range"),
    ({"seq": -1}, "wrong_type"),
    ({"uptime": -5}, "out_of_range"),
    ({"uptime": 10**12}, "out_of_range"),
    ({"type": "p" * 65}, "invalid_name"),
    ({"type": "pump\u202egnp"}, "invalid_name"),
    ({"fw": "1.0\n"}, "invalid_name"),
    ({"fw": "x" * 1000}, "invalid_name"),
    ({"metrics": {"t": 1.7e308}}, "out_of_range"),
    ({"metrics": {"t": 10**400}}, "out_of_range"),
    ({"metrics": {"t": -2e15}}, "out_of_range"),
])
def test_poison_values_are_refused_at_the_edge(fields, reason):
    assert reason_of(decode_telemetry, telemetry(**fields), topic_device_id="p1",
                     now_ms=NOW) == reason


def test_bounds_themselves_are_accepted():
    t = decode_telemetry(telemetry(seq=MAX_SEQ, uptime=86_400 * 365 * 50,
                                   metrics={"t": 1e15, "u": -1e15}, fw="2.1.0+build.7"),
                         topic_device_id="p1", now_ms=NOW)
    assert t.seq == MAX_SEQ and t.metrics == {"t": 1e15, "u": -1e15}


def test_a_number_overflowing_to_infinity_is_not_finite():
    raw = telemetry().replace(b'"t": 1.0', b'"t": 1e999')
    assert reason_of(decode_telemetry, raw, topic_device_id="p1", now_ms=NOW) == "non_finite"


def test_status_and_commands_validate_their_text():
    ok = decode_status(b'{"state":"online","ts":5,"type":"pump","fw":"1.0"}',
                       topic_device_id="p1")
    assert ok.ts_ms == 5
    for bad in (b'{"state":"offline","reason":"a\\u202eb"}',
                b'{"state":"online","type":"' + b"x" * 100 + b'"}',
                b'{"state":"online","ts":' + b"9" * 30 + b"}",
                b'{"state":"online","ts":1e999}',
                DEEP):
        with pytest.raises(ProtocolError):
            decode_status(bad, topic_device_id="p1")
    for decode in (decode_command_request, decode_command_response):
        for bad in (b'{"request_id":"' + b"r" * 200 + b'","command":"ping","ok":true}',
                    b'{"request_id":"r\\u0000","command":"ping","ok":true}',
                    DEEP):
            with pytest.raises(ProtocolError):
                decode(bad)
    with pytest.raises(ProtocolError):
        decode_command_response(b'{"request_id":"r","command":"ping","ok":true,"error":5}')
