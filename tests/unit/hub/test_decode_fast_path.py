"""The hub's fast telemetry decoder (orjson + checks on plain types) must judge
every payload exactly as the reference ``json`` path does: the same Telemetry
for what it accepts, the same reason and message for what it refuses; and the
records the hub builds without re-validation must equal the validated ones."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import UTC, datetime

import pytest

from core.ingest.fast_records import slot_replacer, trusted_readings
from core.model import Device, DeviceStatus, LinkStats, Reading
from core.protocol import payloads
from core.protocol.payloads import ProtocolError, Telemetry, decode_telemetry

NOW_MS = 1_800_000_000_000
DEVICE = "env-00001"


def _judge(payload: bytes) -> tuple[str, object]:
    try:
        return "ok", decode_telemetry(payload, topic_device_id=DEVICE, now_ms=NOW_MS)
    except ProtocolError as exc:
        return exc.reason, str(exc)


def _body(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "device_id": DEVICE, "seq": 41, "ts": NOW_MS - 1000, "type": "environmental",
        "fw": "1.0.0", "metrics": {"temperature": 21.5, "humidity": 40.25, "rssi": -91.0},
        "uptime": 3600}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not _DROP}


_DROP = object()
BIG = 2**64


def _cases() -> list[bytes]:
    texts = [json.dumps(_body()).encode()]
    variants: list[dict[str, object]] = [
        {"seq": BIG}, {"seq": -1}, {"seq": 2**53}, {"seq": 2**53 - 1}, {"seq": 1.0},
        {"seq": True}, {"ts": BIG}, {"ts": NOW_MS + 5 * 60_000 + 1}, {"ts": NOW_MS + 5 * 60_000},
        {"ts": NOW_MS - 7 * 86_400_000 - 1}, {"ts": "x"}, {"uptime": BIG}, {"uptime": -1},
        {"uptime": None}, {"uptime": 1.5}, {"uptime": _DROP}, {"type": _DROP}, {"fw": _DROP},
        {"type": ""}, {"type": "bad type"}, {"fw": "1.0.0+build.7"}, {"fw": "x" * 65},
        {"type": 7}, {"device_id": "other"}, {"device_id": "bad id"}, {"device_id": 5},
        {"metrics": {}}, {"metrics": []}, {"metrics": {"t": True}}, {"metrics": {"t": "1"}},
        {"metrics": {"t": 3}}, {"metrics": {"t": BIG}}, {"metrics": {"t": 1e15}},
        {"metrics": {"t": -1e15}}, {"metrics": {"t": 1.0000001e15}}, {"metrics": {"t": -0.0}},
        {"metrics": {"9bad": 1.0}}, {"metrics": {"t": {"n": 1}}}, {"metrics": {"t": None}},
        {"extra": 1}, {"metrics": _DROP}, {"seq": _DROP}, {"ts": _DROP}, {"device_id": _DROP},
    ]
    texts += [json.dumps(_body(**v)).encode() for v in variants]
    base = json.dumps(_body())
    texts += [t.encode() for t in (
        base.replace("21.5", "NaN"), base.replace("21.5", "Infinity"),
        base.replace("21.5", "1e999"), base.replace('"1.0.0"', '"\\ud800"'),
        base.replace('"temperature"', '"temperature","temperature":1.0,"x"'),
        "\ufeff" + base, base + " x", "[1, 2]", "null", "", base[:-1],
        base.replace('"temperature"', '"t\\u00e9"'))]
    texts += [base.encode("utf-16"), base.encode()[:-3] + b"\xff}", b"\xff" * 10]
    rng = random.Random(12)
    raw = base.encode()
    for _ in range(3000):  # byte-level mutations around the valid message
        b = bytearray(raw)
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] = rng.choice(b'0123456789-.eE"{}[],:tfnu \\')
        texts.append(bytes(b))
    return texts


def test_the_fast_path_judges_every_payload_as_the_json_path(monkeypatch: pytest.MonkeyPatch):
    cases = _cases()
    fast = [_judge(p) for p in cases]
    monkeypatch.setattr(payloads, "_orjson_loads", None)
    reference = [_judge(p) for p in cases]
    for payload, got, want in zip(cases, fast, reference, strict=True):
        assert got == want, payload
    accepted = sum(1 for verdict, _ in reference if verdict == "ok")
    assert accepted > 20 and len(cases) - accepted > 100  # both sides were exercised


def test_a_plain_message_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch):
    """The reference path (json.loads) is not reached for what devices normally send."""
    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError("the json path ran")

    monkeypatch.setattr(payloads, "decode_json_object", refuse)
    telemetry = decode_telemetry(json.dumps(_body(metrics={"t": 3, "h": 2.5})).encode(),
                                 topic_device_id=DEVICE, now_ms=NOW_MS)
    assert telemetry == Telemetry(DEVICE, 41, NOW_MS - 1000, {"t": 3.0, "h": 2.5},
                                  "environmental", "1.0.0", 3600)
    assert type(telemetry.metrics["t"]) is float


def test_records_built_without_revalidation_equal_the_validated_ones():
    at = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert trusted_readings(DEVICE, at, {"t": 1.5, "h": -0.0}) == [
        Reading(DEVICE, "t", at, 1.5), Reading(DEVICE, "h", at, -0.0)]
    stats = LinkStats(DEVICE, last_seq=3, received=4, lost=1, updated_at=at)
    replace_stats = slot_replacer(LinkStats)
    changes = {"received": 5, "last_seq": 9, "boot_at_ms": 12, "updated_at": at}
    assert replace_stats(stats, **changes) == dataclasses.replace(stats, **changes)
    assert replace_stats(stats) == stats and replace_stats(stats) is not stats
    device = Device(DEVICE, name="pump", status=DeviceStatus.ONLINE, tags=frozenset({"a"}),
                    last_seen=at, firmware_version="1.0.0")
    replace_device = slot_replacer(Device)
    assert replace_device(device, firmware_version="1.1.0") == dataclasses.replace(
        device, firmware_version="1.1.0")
    with pytest.raises(dataclasses.FrozenInstanceError):
        replace_device(device).name = "x"  # type: ignore[misc]
