"""The simulated fleet against real brokers: reproducibility, device behaviour
(shadow, commands, reboots, reconnects) and a 1,000-device run."""

from __future__ import annotations

import json
import time
from collections import defaultdict

import pytest

from core.protocol.payloads import decode_telemetry
from simulator.api import RunningFleet
from simulator.broker import EmbeddedBroker
from simulator.faults import FaultPlan
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.mqtt_recorder import Recorder

START = 1_795_000_000.0  # a fixed simulated start time


def scenario(*groups, faults=()) -> Scenario:
    return Scenario(name="test", groups=tuple(groups), faults=FaultPlan(faults))


def env_group(count=5, interval_s=1.0, **kw):
    return DeviceGroup("env", "environmental", count, org="acme", interval_s=interval_s,
                       id_prefix="env", **kw)


def telemetry_by_device(recorder):
    out = defaultdict(list)
    for m in recorder.matching(lambda m: m.topic.endswith("/telemetry")):
        out[m.topic.split("/")[2]].append(m.payload)
    return out


def run_and_record(broker, scen, *, seed, duration_s, speed=20.0, prefix=""):
    recorder = Recorder(broker.host, broker.port, ["dt/#"])
    try:
        running = RunningFleet(scen, broker_url=broker.url, seed=seed, start_s=START,
                               speed=speed, telemetry_qos=1, client_id_prefix=prefix)
        running.start(duration_s)
        running.wait(60)
        recorder.settle()
        return telemetry_by_device(recorder)
    finally:
        recorder.close()


def test_same_seed_and_start_give_byte_identical_payloads(any_broker):
    scen = scenario(env_group(4), DeviceGroup("pumps", "pump", 3, org="acme", interval_s=2.0,
                                              id_prefix="pump"))
    first = run_and_record(any_broker, scen, seed=5, duration_s=20, prefix="a-")
    second = run_and_record(any_broker, scen, seed=5, duration_s=20, prefix="b-")
    other = run_and_record(any_broker, scen, seed=6, duration_s=20, prefix="c-")
    assert set(first) == {f"env-{i:05d}" for i in range(4)} | {f"pump-{i:05d}" for i in range(3)}
    assert sum(len(v) for v in first.values()) >= 7 * 9
    assert first == second
    assert first != other
    body = json.loads(first["pump-00000"][0])
    assert body["ts"] >= START * 1000 and body["type"] == "pump"


@pytest.fixture
def fleet_and_recorder(any_broker):
    """Runs against mosquitto and against the in-process fallback broker."""
    running = RunningFleet(scenario(env_group(3, interval_s=5.0)),
                           broker_url=any_broker.url, seed=1, speed=1.0,
                           client_id_prefix=f"t{time.monotonic_ns()}-")
    recorder = Recorder(any_broker.host, any_broker.port,
                        ["dt/#", "cmd/+/+/res", "$aws/things/+/shadow/#"])
    running.start()
    recorder.wait_for(lambda m: m.topic == "dt/acme/env-00002/status"
                      and m.json()["state"] == "online")
    yield running, recorder
    recorder.close()
    running.stop()


def test_status_online_is_retained_and_offline_published_on_clean_stop(mosquitto_broker):
    running = RunningFleet(scenario(env_group(2)), broker_url=mosquitto_broker.url,
                           client_id_prefix="retain-").start()
    try:
        time.sleep(1.0)
        late = Recorder(mosquitto_broker.host, mosquitto_broker.port, ["dt/acme/+/status"])
        seen = late.wait_for(lambda m: m.topic == "dt/acme/env-00001/status")
        assert seen.retain and seen.json()["state"] == "online"
        late.close()
    finally:
        running.stop()
    after = Recorder(mosquitto_broker.host, mosquitto_broker.port, ["dt/acme/+/status"])
    try:
        seen = after.wait_for(lambda m: m.topic == "dt/acme/env-00001/status")
        assert seen.json()["state"] == "offline"
    finally:
        after.close()


def _command(recorder, device, command, params=None, request_id="r1"):
    recorder.publish(f"cmd/acme/{device}/req",
                     {"request_id": request_id, "command": command, "params": params or {}})
    return recorder.wait_for(lambda m: m.topic == f"cmd/acme/{device}/res"
                             and m.json()["request_id"] == request_id).json()


def test_commands_round_trip(fleet_and_recorder):
    _running, recorder = fleet_and_recorder
    pong = _command(recorder, "env-00000", "ping", request_id="p1")
    assert pong["ok"] is True and pong["result"]["pong"] is True
    assert isinstance(pong["result"]["uptime"], int)
    ident = _command(recorder, "env-00000", "identify", {"seconds": 5}, "i1")
    assert ident["result"] == {"blinking": True, "seconds": 5.0}
    bad = _command(recorder, "env-00000", "self-destruct", request_id="x1")
    assert bad["ok"] is False and "unknown command" in bad["error"]
    wrong = _command(recorder, "env-00000", "set-interval", {"seconds": 0}, "s0")
    assert wrong["ok"] is False and "outside" in wrong["error"]


def test_set_interval_command_changes_the_cadence(fleet_and_recorder):
    running, recorder = fleet_and_recorder
    answer = _command(recorder, "env-00001", "set-interval", {"seconds": 1}, "s1")
    assert answer["ok"] is True and answer["result"] == {"interval": 1.0}
    mark = time.monotonic()
    time.sleep(4.2)
    recent = [m for m in recorder.on("dt/acme/env-00001/telemetry") if m.at > mark]
    assert len(recent) >= 3  # was one every 5 s
    assert running.fleet.interval(1) == 1.0


def test_reboot_command_resets_seq_and_reconnects(fleet_and_recorder):
    running, recorder = fleet_and_recorder
    recorder.wait_for(lambda m: m.topic == "dt/acme/env-00002/telemetry")
    _command(recorder, "env-00002", "set-interval", {"seconds": 1}, "s2")
    recorder.wait_for(lambda m: m.topic == "dt/acme/env-00002/telemetry"
                      and m.json()["seq"] >= 2, timeout=10)
    mark = time.monotonic()
    assert _command(recorder, "env-00002", "reboot", request_id="rb")["result"] == {
        "rebooting": True}
    offline = recorder.wait_for(lambda m: m.topic == "dt/acme/env-00002/status" and m.at > mark
                                and m.json()["state"] == "offline", timeout=20)
    assert offline.json()["reason"] == "connection lost"  # the Last Will, not a clean stop
    back = recorder.wait_for(lambda m: m.topic == "dt/acme/env-00002/telemetry" and m.at > mark,
                             timeout=20).json()
    assert back["seq"] <= 3 and back["uptime"] <= 10
    assert running.stats.by_type["environmental"].reconnects >= 1


def test_shadow_delta_is_obeyed_and_reported(fleet_and_recorder):
    running, recorder = fleet_and_recorder
    thing = "env-00000"
    recorder.publish(f"$aws/things/{thing}/shadow/update/delta", {
        "state": {"interval": 2, "setpoints": {"hvac_setpoint_c": 19.5}},
        "version": 7, "timestamp": 1})
    report = recorder.wait_for(
        lambda m: m.topic == f"$aws/things/{thing}/shadow/update"
        and m.json()["state"]["reported"].get("interval") == 2.0).json()
    assert report["state"]["reported"]["setpoints"] == {"hvac_setpoint_c": 19.5}
    assert running.fleet.interval(0) == 2.0
    # A stale delta (older version) arriving late is ignored.
    recorder.publish(f"$aws/things/{thing}/shadow/update/delta",
                     {"state": {"interval": 30}, "version": 3})
    time.sleep(1.0)
    assert running.fleet.interval(0) == 2.0


def test_device_asks_for_its_shadow_on_connect_and_applies_the_delta(mosquitto_broker):
    recorder = Recorder(mosquitto_broker.host, mosquitto_broker.port,
                        ["$aws/things/+/shadow/get", "$aws/things/+/shadow/update"])
    answered = set()

    def shadow_service(client, userdata, message):
        recorder._on_message(client, userdata, message)
        thing = message.topic.split("/")[2]
        if message.topic.endswith("/shadow/get") and thing not in answered:
            answered.add(thing)
            # as IoT Core does, the answer carries the get's clientToken: the
            # device takes only answers to its own gets
            token = json.loads(message.payload)["clientToken"]
            client.publish(f"$aws/things/{thing}/shadow/get/accepted", json.dumps({
                "state": {"desired": {"interval": 3}, "reported": {"interval": 5},
                          "delta": {"interval": 3}}, "version": 4,
                "clientToken": token}).encode(), qos=1)

    recorder.client.on_message = shadow_service
    running = RunningFleet(scenario(env_group(2, interval_s=5.0)),
                           broker_url=mosquitto_broker.url, client_id_prefix="sg-").start()
    try:
        report = recorder.wait_for(lambda m: m.topic == "$aws/things/env-00001/shadow/update")
        assert report.json()["state"]["reported"]["interval"] == 3.0
        assert running.fleet.interval(1) == 3.0
    finally:
        running.stop()
        recorder.close()


def test_devices_reconnect_after_broker_restart_and_keep_state():
    broker = EmbeddedBroker(prefer="mosquitto", anonymous=True).start()
    port = broker.port
    running = RunningFleet(scenario(env_group(3, interval_s=1.0)), broker_url=broker.url,
                           client_id_prefix="rc-").start()
    try:
        recorder = Recorder(broker.host, port, ["dt/#"])
        recorder.wait_for(lambda m: m.topic == "dt/acme/env-00000/telemetry")
        running.fleet.set_interval(0, 2.0)
        recorder.close()
        broker.stop()
        time.sleep(1.5)
        broker = EmbeddedBroker(prefer="mosquitto", port=port, anonymous=True).start()
        recorder = Recorder(broker.host, port, ["dt/#", "cmd/+/+/res"])
        back = recorder.wait_for(lambda m: m.topic == "dt/acme/env-00000/telemetry",
                                 timeout=40)
        assert back.json()["seq"] > 0  # no reboot: the sequence continues
        assert running.stats.by_type["environmental"].reconnects >= 3
        assert running.fleet.interval(0) == 2.0
        assert _command(recorder, "env-00001", "ping", request_id="after")["ok"] is True
        recorder.close()
    finally:
        running.stop()
        broker.stop()


def test_unreachable_broker_is_counted_and_retried_not_raised():
    from simulator.broker import find_free_port

    running = RunningFleet(scenario(env_group(2)),
                           broker_url=f"mqtt://127.0.0.1:{find_free_port()}").start()
    time.sleep(2.5)
    stats = running.stop()
    assert stats.connect_errors >= 4  # first try plus jittered retries for both devices
    assert "cannot reach broker" in stats.last_error
    assert stats.ever_connected == 0


def test_thousand_devices_deliver_everything(mosquitto_broker):
    recorder = Recorder(mosquitto_broker.host, mosquitto_broker.port, ["dt/+/+/telemetry"])
    scen = scenario(DeviceGroup("k", "power_meter", 1000, org="bulk", interval_s=1.0,
                                id_prefix="k"))
    try:
        running = RunningFleet(scen, broker_url=mosquitto_broker.url, seed=3, start_s=START,
                               speed=1.0, client_id_prefix="bulk-")
        running.start(8)
        stats = running.wait(120)
        time.sleep(1.0)
        received = recorder.matching(lambda m: m.topic.startswith("dt/bulk/"))
        assert stats.ever_connected == 1000
        sent = stats.by_type["power_meter"].sent
        assert sent >= 1000 * 7
        assert len(received) >= 0.999 * sent
        now_ms = int(START * 1000) + 60_000
        sample = decode_telemetry(received[0].payload,
                                  topic_device_id=received[0].topic.split("/")[2], now_ms=now_ms)
        assert set(sample.metrics) >= {"voltage", "current", "power", "power_factor"}
    finally:
        recorder.close()
