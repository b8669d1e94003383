"""Every hostile payload the fuzz suite knows, replayed against a running hub on
a real mosquitto at 20 messages a second while good telemetry flows: the good
data is all stored, every hostile message is answered or quarantined, and the
hub goes on."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import pytest

from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.hub import Hub
from tests.mqtt_recorder import Recorder

DEVICES = [f"good-{i}" for i in range(4)]
ROUNDS = 150
DEEP = b'{"a":' * 20_000 + b"1" + b"}" * 20_000
DEEP_STATE = json.dumps({"state": {"reported": {"a": {"b": {"c": {"d": {"e": {"f": {
    "g": 1}}}}}}}}}).encode()
BIG_STATE = json.dumps({"state": {"reported": {"blob": "x" * 9000}}}).encode()

DOCUMENTS = [
    DEEP, b"[" * 30_000 + b"]" * 30_000, b'{"v":' + b"9" * 5000 + b"}",
    b'{"v":' + b"9" * 4200 + b"}", b'{"v":"\xff\xfe"}', b'{"v":"\\ud800"}', b'{"v":1e999}',
    b'{"v":NaN}', b"x" * 140_000, b"[1]", b"null", b"{", DEEP_STATE, BIG_STATE,
    json.dumps({"state": {"desired": {"x": 1}}, "clientToken": "t" * 65}).encode(),
    json.dumps({"status": "SUCCEEDED", "expectedVersion": 10**30}).encode(),
    json.dumps({"status": "IN_PROGRESS", "statusDetails": {"k" * 200: "v"}}).encode(),
]
REQUEST_TOPICS = [
    "$aws/things/evil-1/shadow/update", "$aws/things/evil-1/shadow/get",
    "$aws/things/evil-1/shadow/delete", "$aws/things/evil-1/jobs/start-next",
    "$aws/things/evil-1/jobs/job-1/update", "$aws/things/evil-1/jobs/$next/get",
    "$aws/things/evil-1/jobs/get",
]


def poison_telemetry(now_ms: int) -> list[tuple[str, bytes]]:
    def body(**fields: object) -> bytes:
        base: dict[str, object] = {"device_id": "evil-1", "seq": 1, "ts": now_ms,
                                   "type": "pump", "fw": "1.0.0", "metrics": {"t": 1.0}}
        base.update(fields)
        return json.dumps(base).encode()

    topic = "dt/acme/evil-1/telemetry"
    return [(topic, p) for p in (
        body(seq=2**63), body(seq=2**53), body(metrics={"t": 1.7e308}),
        body(metrics={"t": 10**400}), body(type="p" * 65), body(fw="1.0\u202e"),
        body(uptime=-5), body(uptime=2**62), DEEP, b'{"seq":' + b"9" * 5000 + b"}",
        b'{"device_id":"evil-1","seq":1,"ts":1,"metrics":{"t":1e999}}', b"\xff\xfe",
    )] + [("dt/acme/evil-1/status", p) for p in (
        b'{"state":"offline","reason":"\\u202e"}', b'{"state":"online","ts":' + b"9" * 40 + b"}",
        b'{"state":"online","type":"' + b"t" * 80 + b'"}', DEEP)]


@pytest.fixture
def hub(mosquitto_broker, tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    hub = Hub(store, EventBus(), mosquitto_broker.host, mosquitto_broker.port)
    hub.start()
    assert hub.wait_connected(10)
    time.sleep(0.3)
    yield hub, store
    hub.stop()
    store.close()


def test_hostile_payloads_at_20_per_second_cost_good_telemetry_nothing(hub, mosquitto_broker):
    hub_, store = hub
    good = Recorder(mosquitto_broker.host, mosquitto_broker.port, ["nothing/here"])
    hostile = Recorder(mosquitto_broker.host, mosquitto_broker.port,
                       ["$aws/things/evil-1/+/+/rejected", "$aws/things/evil-1/+/rejected",
                        "$aws/things/evil-1/jobs/+/+/rejected"])
    start_ms = int(time.time() * 1000)
    messages = [(t, p) for p in DOCUMENTS for t in REQUEST_TOPICS] + poison_telemetry(start_ms)
    sent = {"hostile": 0}
    done = threading.Event()

    def attack() -> None:
        i = 0
        while not done.is_set() or i < len(messages):
            topic, payload = messages[i % len(messages)]
            hostile.publish(topic, payload, qos=0)
            sent["hostile"] += 1
            i += 1
            time.sleep(0.05)  # 20 a second

    attacker = threading.Thread(target=attack, daemon=True)
    attacker.start()
    try:
        for seq in range(ROUNDS):
            for n, device in enumerate(DEVICES):
                good.publish(f"dt/acme/{device}/telemetry", json.dumps({
                    "device_id": device, "seq": seq, "ts": start_ms + seq * 10 + n,
                    "type": "pump", "fw": "1.0.0", "metrics": {"temperature": seq + n / 10},
                    "uptime": 100 + seq}).encode())
            time.sleep(0.02)
        done.set()
        attacker.join(120)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
                (s := store.link_stats.get(d)) is not None and s.received == ROUNDS
                for d in DEVICES):
            time.sleep(0.1)
    finally:
        done.set()
        good.close()
    try:
        stored = {d: store.telemetry.query(d, "temperature", datetime(2020, 1, 1, tzinfo=UTC),
                                           datetime(2100, 1, 1, tzinfo=UTC)).value.size
                  for d in DEVICES}
        assert stored == {d: ROUNDS for d in DEVICES}, stored
        for device in DEVICES:
            stats = store.link_stats.get(device)
            assert (stats.received, stats.lost, stats.duplicates, stats.out_of_order) == (
                ROUNDS, 0, 0, 0)
        assert sent["hostile"] >= len(messages)
        # every unreadable request was answered on /rejected with IoT Core's codes ...
        codes = {seen.json().get("code") for seen in hostile.matching(
            lambda s: "/shadow/" in s.topic)}
        assert {400, 413, 415} <= codes
        jobs_codes = {seen.json().get("code") for seen in hostile.matching(
            lambda s: "/jobs/" in s.topic)}
        assert "InvalidJson" in jobs_codes
        # ... and kept for diagnosis; the poison telemetry too, and nothing of it stored
        reasons = store.quarantine.counts_by_reason()
        for reason in ("shadow_too_deep", "shadow_oversized", "shadow_invalid_encoding",
                       "jobs_too_deep", "out_of_range", "invalid_name", "too_deep"):
            assert reasons.get(reason, 0) >= 1, (reason, reasons)
        assert store.telemetry.latest("evil-1") == {}
        assert hub_.snapshot()["connection"] == "connected"
        print(f"\nhostile replay: {sent['hostile']} hostile messages "
              f"({len(messages)} kinds), {ROUNDS * len(DEVICES)} good readings sent, "
              f"{sum(stored.values())} stored, quarantined by reason: {reasons}")
    finally:
        hostile.close()
