"""Every fault, seen the way the hub will see it: through a real broker.

One seeded run with a fault on its own devices each, recorded by an
independent subscriber; each test then checks one fault's signature."""

from __future__ import annotations

import itertools
import json
import math
import time
from collections import defaultdict

import pytest

from simulator.api import RunningFleet
from simulator.faults import FaultPlan, FaultSpec
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.mqtt_recorder import Recorder

START = 1_795_000_000.0
SPEED = 10.0
DURATION = 60.0


def _env(i):
    return f"env-{i:05d}"


def _pump(i):
    return f"pump-{i:05d}"


FAULTS = [
    FaultSpec("stuck", {"metrics": ["temperature"]}, start_s=10, group="env", devices=[0]),
    FaultSpec("spike", {"p": 0.3, "magnitude_sigma": 20.0, "metrics": ["temperature"]},
              group="env", devices=[1]),
    FaultSpec("drift", {"rate_per_h": 3600.0, "metrics": ["temperature"]}, start_s=5,
              group="env", devices=[2]),
    FaultSpec("out_of_range", {"p": 1.0, "metrics": ["temperature"]}, start_s=20,
              duration_s=10, group="env", devices=[3]),
    FaultSpec("nan", {"p": 1.0, "metrics": ["humidity"]}, start_s=30, duration_s=5,
              group="env", devices=[4]),
    FaultSpec("malformed", {"p": 0.5}, group="env", devices=[5]),
    FaultSpec("loss", {"p": 0.3}, group="pumps", devices=[0]),
    FaultSpec("duplicate", {"p": 0.3}, group="pumps", devices=[1]),
    FaultSpec("reorder", {"p": 0.5, "window": 3}, group="pumps", devices=[2]),
    FaultSpec("burst", {}, start_s=10, duration_s=10, group="pumps", devices=[3]),
    FaultSpec("drop", {}, start_s=20, duration_s=10, group="pumps", devices=[4]),
    FaultSpec("flap", {"period_s": 12.0, "down_s": 4.0}, start_s=5, duration_s=40,
              group="pumps", devices=[5]),
    FaultSpec("reboot", {}, start_s=15, group="pumps", devices=[6]),
    FaultSpec("battery_depletion", {"factor": 300.0}, group="batt"),
]


@pytest.fixture(scope="module")
def recording(mosquitto_broker):
    scenario = Scenario("faults", (
        DeviceGroup("env", "environmental", 7, org="qa", interval_s=1.0, id_prefix="env"),
        DeviceGroup("pumps", "pump", 8, org="qa", interval_s=1.0, id_prefix="pump"),
        DeviceGroup("batt", "environmental", 1, org="qa", interval_s=1.0, id_prefix="batt",
                    params={"battery_capacity_mah": 2.0}),
    ), FaultPlan(FAULTS))
    recorder = Recorder(mosquitto_broker.host, mosquitto_broker.port, ["dt/qa/#"])
    running = RunningFleet(scenario, broker_url=mosquitto_broker.url, seed=99, start_s=START,
                           speed=SPEED, telemetry_qos=1, client_id_prefix="faults-")
    running.start(DURATION)
    running.wait(120)
    # Messages still on their way (QoS 1 under a loaded machine): close the
    # recording once nothing new has arrived for a second, not after a fixed pause.
    seen, quiet_since, deadline = -1, time.monotonic(), time.monotonic() + 15
    while time.monotonic() < deadline and time.monotonic() - quiet_since < 1.0:
        if len(recorder.messages) != seen:
            seen, quiet_since = len(recorder.messages), time.monotonic()
        time.sleep(0.1)
    recorder.close()
    by_topic = defaultdict(list)
    for m in recorder.messages:
        by_topic[m.topic].append(m)
    return by_topic


def telemetry(recording, device):
    return [json.loads(m.payload) for m in recording[f"dt/qa/{device}/telemetry"]]


def statuses(recording, device):
    return [json.loads(m.payload)["state"] for m in recording[f"dt/qa/{device}/status"]]


def at(body):
    return body["ts"] / 1000 - START


def test_healthy_device_sends_every_second_without_gaps(recording):
    bodies = telemetry(recording, _pump(7))
    seqs = [b["seq"] for b in bodies]
    assert len(bodies) >= 0.9 * DURATION
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_stuck_sensor_repeats_one_value(recording):
    after = [b["metrics"]["temperature"] for b in telemetry(recording, _env(0)) if at(b) >= 11]
    before = [b["metrics"]["temperature"] for b in telemetry(recording, _env(0)) if at(b) < 10]
    assert len(after) > 20 and len(set(after)) == 1
    assert len(set(before)) > 1


def test_spikes_are_large_one_sample_outliers(recording):
    temps = [b["metrics"]["temperature"] for b in telemetry(recording, _env(1))]
    median = sorted(temps)[len(temps) // 2]
    outliers = [t for t in temps if abs(t - median) > 5]
    assert 3 <= len(outliers) < len(temps) / 2


def test_drift_grows_a_bias_over_time(recording):
    drifted = {at(b): b["metrics"]["temperature"] for b in telemetry(recording, _env(2))}
    early = [v for t, v in drifted.items() if t < 5]
    late = [v for t, v in drifted.items() if t > 50]
    # 3600 per hour is one degree per second: about +45 degrees by the end.
    assert min(late) - max(early) > 30


def test_out_of_range_values_are_physically_impossible(recording):
    window = [b["metrics"]["temperature"] for b in telemetry(recording, _env(3))
              if 20 <= at(b) < 30]
    assert window and all(t < -273.15 for t in window)


def test_nan_appears_in_payloads(recording):
    raw = [m.payload for m in recording[f"dt/qa/{_env(4)}/telemetry"]]
    with_nan = [p for p in raw if b"NaN" in p]
    assert with_nan
    assert all(math.isnan(json.loads(p)["metrics"]["humidity"]) for p in with_nan)


def test_malformed_payloads_are_not_json(recording):
    raw = [m.payload for m in recording[f"dt/qa/{_env(5)}/telemetry"]]
    broken = 0
    for payload in raw:
        try:
            json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            broken += 1
    assert 0.2 * len(raw) < broken < 0.8 * len(raw)


def test_loss_leaves_seq_gaps(recording):
    seqs = [b["seq"] for b in telemetry(recording, _pump(0))]
    span = max(seqs) - min(seqs) + 1
    missing = span - len(set(seqs))
    # p = 0.3 over ~60 messages: the lost share lands well inside 10-55 %
    assert 0.10 * span < missing < 0.55 * span
    assert len(seqs) == len(set(seqs))  # loss only: nothing duplicated


def test_duplicates_are_byte_identical(recording):
    raw = [m.payload for m in recording[f"dt/qa/{_pump(1)}/telemetry"]]
    assert len(raw) - len(set(raw)) >= 5


def test_reorder_delivers_seq_out_of_order_without_loss(recording):
    seqs = [b["seq"] for b in telemetry(recording, _pump(2))]
    assert any(b < a for a, b in itertools.pairwise(seqs))
    assert sorted(seqs) == list(range(min(seqs), min(seqs) + len(seqs)))


def test_burst_releases_late_with_original_timestamps(recording):
    messages = recording[f"dt/qa/{_pump(3)}/telemetry"]
    held = [(m, json.loads(m.payload)) for m in messages
            if 10 <= at(json.loads(m.payload)) < 20]
    assert len(held) >= 9
    arrivals = [m.at for m, _ in held]
    assert max(arrivals) - min(arrivals) < 0.5  # released together
    seqs = [b["seq"] for _, b in held]
    assert seqs == sorted(seqs)  # original order and seq kept


def test_drop_sends_last_will_and_comes_back(recording):
    states = statuses(recording, _pump(4))
    assert states[0] == "online" and "offline" in states
    assert states[states.index("offline") + 1:].count("online") >= 1
    bodies = telemetry(recording, _pump(4))
    assert not [b for b in bodies if 20.5 <= at(b) < 29.5]


def test_flapping_connection_goes_up_and_down_repeatedly(recording):
    states = statuses(recording, _pump(5))
    assert states.count("offline") >= 3 and states.count("online") >= 4


def test_reboot_resets_seq_and_uptime(recording):
    bodies = telemetry(recording, _pump(6))
    before = [b for b in bodies if at(b) < 15]
    after = [b for b in bodies if at(b) > 20]
    assert before[-1]["seq"] >= 10 and before[-1]["uptime"] > 1000
    assert after[0]["seq"] < 10 and after[0]["uptime"] < 15
    assert "offline" in statuses(recording, _pump(6))
    # One reboot is one restart of seq: the reading of the tick it goes down is not
    # sent with a fresh seq before the restart at reconnect (the hub counted two).
    # (A QoS 1 message resent after the reconnect is the same body: counted once.)
    boots = {json.dumps(b, sort_keys=True) for b in bodies[1:] if b["seq"] == 0}
    assert len(boots) == 1, str([b["seq"] for b in bodies])


def test_battery_depletion_ends_in_offline(recording):
    bodies = telemetry(recording, "batt-00000")
    levels = [b["metrics"]["battery_pct"] for b in bodies]
    assert levels[-1] < levels[0] and levels[-1] < 5
    assert statuses(recording, "batt-00000")[-1] == "offline"
    assert at(bodies[-1]) < DURATION - 3  # it went quiet before the end
