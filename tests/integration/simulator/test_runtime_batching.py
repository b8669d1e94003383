"""Batched QoS 0 telemetry against a real mosquitto: at high speed a session's
messages leave in fewer writes than messages, and every message still arrives,
in order, byte-identical to the same fleet ticked without any network."""

from __future__ import annotations

import time
from collections import defaultdict

from simulator.runtime import FleetRuntime
from simulator.scenario import single_group
from simulator.target import BrokerTarget
from tests.mqtt_recorder import Recorder

START = 1_795_000_000.0
SEED = 11


def expected_payloads(devices: int, duration_s: float, tick_s: float) -> dict[str, list[bytes]]:
    """What the runtime must send: the same fleet on the same quantised ticks."""
    fleet = single_group(devices, "environmental", interval_s=1.0).build_fleet(
        seed=SEED, start_s=START)
    out: dict[str, list[bytes]] = defaultdict(list)
    k = 0
    while k * tick_s <= duration_s + 1e-9:
        for _index, telemetry in fleet.tick(START + k * tick_s):
            out[telemetry.device_id].append(telemetry.encode())
        k += 1
    return dict(out)


def run(broker, devices: int, duration_s: float, speed: float, prefix: str):
    recorder = Recorder(broker.host, broker.port, ["dt/+/+/telemetry"])
    try:
        fleet = single_group(devices, "environmental", interval_s=1.0).build_fleet(
            seed=SEED, start_s=START)
        runtime = FleetRuntime(fleet, BrokerTarget.parse(broker.url), speed=speed,
                               client_id_prefix=prefix, seed=SEED)
        stats = runtime.run(duration_s)
        deadline = time.monotonic() + 10
        sent = sum(t.sent for t in stats.by_type.values())
        while time.monotonic() < deadline and len(recorder.messages) < sent:
            time.sleep(0.05)
        got: dict[str, list[bytes]] = defaultdict(list)
        for m in recorder.matching(lambda m: m.topic.endswith("/telemetry")):
            got[m.topic.split("/")[2]].append(m.payload)
        return runtime, sent, dict(got)
    finally:
        recorder.close()


def test_high_speed_telemetry_is_coalesced_complete_ordered_and_identical(mosquitto_broker):
    devices, duration = 20, 60.0  # 40x: 800 msg/s for 1.5 s of wall time
    runtime, sent, got = run(mosquitto_broker, devices, duration, 40.0, "batch-fast-")
    want = expected_payloads(devices, duration, runtime.tick_s)
    assert sent == sum(len(v) for v in want.values()) == devices * int(duration)
    assert got == want  # all of them, in order per device (seq), same bytes
    # a device has ~2 messages due per 50 ms batch at 40x: far fewer writes than messages
    assert runtime.telemetry_writes <= 0.7 * sent


def test_normal_rate_writes_each_message_when_due(mosquitto_broker):
    devices, duration = 3, 3.0
    runtime, sent, got = run(mosquitto_broker, devices, duration, 1.0, "batch-slow-")
    assert got == expected_payloads(devices, duration, runtime.tick_s)
    assert runtime.telemetry_writes == sent  # nothing held back at 1 msg/s
