"""Telemetry, status and command messages: value or ProtocolError, nothing else."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from core.model.ids import is_valid_device_id
from core.protocol.payloads import (
    DEVICE_TYPE_PATTERN,
    FIRMWARE_PATTERN,
    MAX_METRIC_MAGNITUDE,
    MAX_SEQ,
    MAX_UPTIME_S,
    ProtocolError,
    decode_command_request,
    decode_command_response,
    decode_status,
    decode_telemetry,
    has_unsafe_text,
)
from tests.fuzz.conftest import (
    HOSTILE_TEXT,
    JSON_VALUES,
    SCALARS,
    count,
    fuzz_settings,
    payloads,
    variants,
)

NOW = 1_795_000_000_000
NUMBERS = st.one_of(st.integers(-(2**66), 2**66), st.floats(), st.sampled_from(
    [0, 1, MAX_SEQ, MAX_SEQ + 1, 2**63, -1, 1e15, 1.7e308, -1e16, True, None, "1"]))
TELEMETRY = st.fixed_dictionaries(
    {"device_id": st.sampled_from(["p1", "p2", "", "p 1", "p1\u202e"]) | HOSTILE_TEXT,
     "seq": NUMBERS, "ts": st.integers(NOW - 10**10, NOW + 10**9) | NUMBERS,
     "metrics": st.dictionaries(st.text(max_size=6) | st.sampled_from(["t", "rssi", "a.b"]),
                                NUMBERS | SCALARS, max_size=4) | JSON_VALUES},
    optional={"type": st.sampled_from(["pump", "p" * 65, ""]) | HOSTILE_TEXT | SCALARS,
              "fw": st.sampled_from(["1.0.0", "2.1.0+b7", "1.0\n"]) | HOSTILE_TEXT | SCALARS,
              "uptime": NUMBERS, "extra": JSON_VALUES},
)


@given(payloads(TELEMETRY), st.integers())
@fuzz_settings(850)
def test_telemetry(payload, seed):
    for case in variants(payload, seed):
        check_telemetry(case)


def check_telemetry(payload):
    count("telemetry")
    try:
        t = decode_telemetry(payload, topic_device_id="p1", now_ms=NOW)
    except ProtocolError as exc:
        assert exc.reason and str(exc)
        return
    assert t.device_id == "p1" and 0 <= t.seq <= MAX_SEQ
    assert t.metrics and all(math.isfinite(v) and abs(v) <= MAX_METRIC_MAGNITUDE
                             for v in t.metrics.values())
    assert t.uptime_s is None or 0 <= t.uptime_s <= MAX_UPTIME_S
    for name, pattern in ((t.device_type, DEVICE_TYPE_PATTERN), (t.firmware, FIRMWARE_PATTERN)):
        assert name == "" or pattern.fullmatch(name)
    assert isinstance(t.encode(), bytes)


STATUS = st.fixed_dictionaries(
    {"state": st.sampled_from(["online", "offline"]) | SCALARS},
    optional={"ts": NUMBERS, "type": HOSTILE_TEXT | SCALARS, "fw": HOSTILE_TEXT | SCALARS,
              "reason": HOSTILE_TEXT | SCALARS, "more": JSON_VALUES},
)


@given(payloads(STATUS), st.integers())
@fuzz_settings(300)
def test_status(payload, seed):
    for case in variants(payload, seed):
        check_status(case)


def check_status(payload):
    count("status")
    try:
        s = decode_status(payload, topic_device_id="p1")
    except ProtocolError as exc:
        assert exc.reason
        return
    assert s.state in ("online", "offline") and not has_unsafe_text(s.reason)
    assert s.ts_ms is None or 0 <= s.ts_ms <= MAX_SEQ
    assert isinstance(s.encode(), bytes)


COMMAND = st.fixed_dictionaries(
    {"request_id": st.sampled_from(["r1", ""]) | HOSTILE_TEXT | SCALARS,
     "command": st.sampled_from(["ping", "reboot"]) | HOSTILE_TEXT | SCALARS},
    optional={"ok": st.booleans() | SCALARS, "params": JSON_VALUES, "result": JSON_VALUES,
              "error": HOSTILE_TEXT | SCALARS, "ts": NUMBERS},
)


@given(payloads(COMMAND), st.integers())
@fuzz_settings(250)
def test_command_requests_and_responses(payload, seed):
    for case in variants(payload, seed):
        check_commands(case)


def check_commands(payload):
    count("commands")
    for decode in (decode_command_request, decode_command_response):
        try:
            message = decode(payload)  # type: ignore[operator]
        except ProtocolError as exc:
            assert exc.reason
            continue
        assert message.request_id and not has_unsafe_text(message.request_id)
        assert isinstance(message.encode(), bytes)


@given(st.text(max_size=40))
@fuzz_settings(500)
def test_device_id_check_never_raises(text):
    count("device_ids")
    assert is_valid_device_id(text) in (True, False)
