"""Fleet scheduling, seq/uptime bookkeeping, runtime controls and reproducibility."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import ValidationError
from core.model.ids import is_valid_device_id
from core.protocol.payloads import decode_telemetry
from simulator.faults import FaultPlan, FaultSpec, is_valid_json
from simulator.fleet import DeviceGroup, Fleet

from .conftest import MONDAY

GROUPS = [
    DeviceGroup("env", "environmental", 30, interval_s=2.0),
    DeviceGroup("meters", "power_meter", 20, interval_s=5.0, id_prefix="pm"),
    DeviceGroup("cars", "tracker", 20, interval_s=1.0),
    DeviceGroup("pumps", "pump", 30, interval_s=3.0, org="plant-7"),
]
ALL_FAULTS = FaultPlan([
    FaultSpec("bearing_failure", {"time_to_failure_s": 30}, start_s=5, fraction=0.1,
              group="pumps"),
    FaultSpec("stuck", start_s=3, duration_s=10, fraction=0.2),
    FaultSpec("spike", {"p": 0.2}, fraction=0.3),
    FaultSpec("drift", start_s=2, fraction=0.2),
    FaultSpec("out_of_range", {"p": 0.3}, start_s=4, devices=[0, 1], group="env"),
    FaultSpec("nan", {"p": 0.3}, devices=[2], group="env"),
    FaultSpec("loss", {"p": 0.1}),
    FaultSpec("duplicate", {"p": 0.1}),
    FaultSpec("reorder", {"p": 0.2, "window": 2}),
    FaultSpec("malformed", {"p": 0.05}),
    FaultSpec("burst", start_s=6, duration_s=8, fraction=0.2),
    FaultSpec("drop", start_s=10, duration_s=5, fraction=0.2),
    FaultSpec("flap", {"period_s": 4, "down_s": 1}, start_s=3, duration_s=12, fraction=0.1),
    FaultSpec("reboot", start_s=7, fraction=0.1),
    FaultSpec("battery_depletion", {"factor": 1e6}, start_s=1, devices=[3], group="cars"),
])


def run(seed: int = 1, groups=GROUPS, faults=ALL_FAULTS, seconds=25.0):
    return list(Fleet(groups, seed=seed, start_s=MONDAY, faults=faults).generate(seconds))


def test_same_seed_with_faults_is_byte_identical_and_seed_matters():
    first = run()
    assert first == run()
    assert first != run(seed=2)
    assert len(first) > 500
    assert any(not is_valid_json(p) for _, _, p in first)        # faults really were on


def test_appending_a_group_does_not_change_earlier_groups():
    base = [m for m in run(faults=None) if m[1] < 30]
    more = run(groups=[*GROUPS, DeviceGroup("extra", "tracker", 10, interval_s=1.0)],
               faults=None)
    assert [m for m in more if m[1] < 30] == base


def test_ids_topics_and_payloads_are_valid():
    fleet = Fleet(GROUPS, seed=3, start_s=MONDAY)
    assert fleet.device_ids[0] == "env-00000" and fleet.device_ids[30] == "pm-00000"
    assert all(is_valid_device_id(d) for d in fleet.device_ids)
    assert len(set(fleet.device_ids)) == fleet.size == 100
    assert fleet.topic(99) == "dt/plant-7/pumps-00029/telemetry"
    for t, index, payload in fleet.generate(6.0):
        msg = decode_telemetry(payload, topic_device_id=fleet.device_ids[index],
                               now_ms=round(t * 1000))
        assert {"battery_pct", "battery_v", "rssi"} <= set(msg.metrics)


def test_reports_follow_interval_with_spread_phases_and_monotonic_seq():
    fleet = Fleet([DeviceGroup("env", "environmental", 500, interval_s=10.0)], seed=4,
                  start_s=MONDAY)
    per_tick = [len(fleet.tick(MONDAY + k * 0.5)) for k in range(1, 41)]
    assert max(per_tick) < 100                       # not all on one instant
    assert sum(per_tick) == 1000                     # 20 s / 10 s interval x 500 devices
    seqs: dict[int, list[int]] = {}
    for i, msg in fleet.tick(MONDAY + 30):
        seqs.setdefault(i, []).append(msg.seq)
    assert all(s == [2] for s in seqs.values())


def test_set_interval_changes_one_device_and_validates():
    fleet = Fleet([DeviceGroup("env", "environmental", 3, interval_s=60.0)], start_s=MONDAY)
    fleet.tick(MONDAY + 60)
    fleet.set_interval(1, 1.0)
    counts = np.zeros(3, int)
    for k in range(1, 11):
        for i, _ in fleet.tick(MONDAY + 60 + k):
            counts[i] += 1
    assert counts[1] == 10 and counts[0] <= 1 and fleet.interval(1) == 1.0
    with pytest.raises(ValidationError, match="interval"):
        fleet.set_interval(0, 0)
    with pytest.raises(ValidationError, match="outside"):
        fleet.set_interval(3, 5)


def test_reboot_fault_resets_seq_and_uptime():
    plan = FaultPlan([FaultSpec("reboot", start_s=10, devices=[0])])
    fleet = Fleet([DeviceGroup("env", "environmental", 2, interval_s=1.0)], start_s=MONDAY,
                  faults=plan)
    history = {0: [], 1: []}
    for k in range(1, 16):
        for i, msg in fleet.tick(MONDAY + k):
            history[i].append((msg.seq, msg.uptime_s))
        if k == 10:
            assert fleet.last_rebooted.tolist() == [0]
    seq0 = [s for s, _ in history[0]]
    assert seq0[:9] == list(range(9)) and seq0[9:] == list(range(6))
    assert [u for _, u in history[0]][9] == 0
    assert [s for s, _ in history[1]] == list(range(15))
    fleet.reboot(1)
    assert fleet.tick(MONDAY + 16)[1][1].seq == 0


def test_a_reboot_stamped_after_the_tick_being_sent_reports_uptime_zero_not_negative():
    """A reboot command is stamped with its own clock, which can be ahead of the
    tick still being sent: that message said uptime -1 and the hub quarantined it
    as out of range (seen in the team walk-through's rollout)."""
    fleet = Fleet([DeviceGroup("env", "environmental", 2, interval_s=1.0)], start_s=MONDAY)
    for k in range(1, 5):
        fleet.tick(MONDAY + k)
    fleet.reboot(0, t_s=MONDAY + 5.6)
    sent = dict(fleet.tick(MONDAY + 5))
    assert sent[0].seq == 0 and sent[0].uptime_s == 0
    assert sent[1].uptime_s > 0  # the other device booted before the fleet started


def test_drop_and_depletion_take_devices_offline_and_leave_seq_gaps():
    plan = FaultPlan([FaultSpec("drop", start_s=5, duration_s=3, devices=[0]),
                      FaultSpec("battery_depletion", {"factor": 1e7}, start_s=2, devices=[1])])
    fleet = Fleet([DeviceGroup("env", "environmental", 3, interval_s=1.0)], start_s=MONDAY,
                  faults=plan)
    seen = {0: [], 1: [], 2: []}
    offline = []
    for k in range(1, 13):
        for i, msg in fleet.tick(MONDAY + k):
            seen[i].append(msg.seq)
        offline.append(fleet.offline_mask().tolist())
    assert seen[0] == [0, 1, 2, 3, 7, 8, 9, 10, 11]
    assert offline[4][0] and not offline[7][0]
    assert len(seen[1]) < 4 and all(row[1] for row in offline[5:])
    assert seen[2] == list(range(12))


def test_burst_in_fleet_releases_late_with_original_ts_and_seq():
    plan = FaultPlan([FaultSpec("burst", start_s=5, duration_s=10, devices=[0])])
    fleet = Fleet([DeviceGroup("env", "environmental", 2, interval_s=1.0)], start_s=MONDAY,
                  faults=plan)
    out = [(t, json.loads(p)) for t, i, p in fleet.generate(20) if i == 0]
    late = [(t, body) for t, body in out if body["ts"] < round(t * 1000)]
    assert len(late) == 10 and {t for t, _ in late} == {MONDAY + 15}
    assert [b["seq"] for _, b in out] == sorted(b["seq"] for _, b in out)
    assert [b["ts"] for _, b in late] == [round((MONDAY + k) * 1000) for k in range(5, 15)]


def test_bearing_failure_from_the_plan_drives_wear_to_one():
    plan = FaultPlan([FaultSpec("bearing_failure", {"time_to_failure_s": 60}, start_s=1,
                                fraction=0.5, group="pumps")])
    fleet = Fleet([DeviceGroup("pumps", "pump", 10, interval_s=10.0)], start_s=MONDAY,
                  faults=plan)
    last = {}
    for k in range(1, 15):
        for i, msg in fleet.tick(MONDAY + 10 * k):
            last[i] = msg.metrics["bearing_wear"]
    assert sorted(round(w, 3) for w in last.values())[-5:] == [1.0] * 5


def test_bad_groups_and_time_going_backwards_are_rejected():
    with pytest.raises(ValidationError, match="unknown model 'boiler'"):
        Fleet([DeviceGroup("b", "boiler", 1)])
    with pytest.raises(ValidationError, match="used twice"):
        Fleet([DeviceGroup("a", "pump", 1), DeviceGroup("a", "pump", 1, id_prefix="x")])
    with pytest.raises(ValidationError, match="contains"):
        Fleet([DeviceGroup("bad group", "pump", 1)])
    fleet = Fleet([DeviceGroup("a", "pump", 1)], start_s=MONDAY)
    fleet.tick(MONDAY + 5)
    with pytest.raises(ValidationError, match="before the previous tick"):
        fleet.tick(MONDAY + 4)


def test_faults_can_be_injected_while_running():
    from core.errors import ValidationError as _ValidationError
    from simulator.fleet import DeviceGroup as _Group
    from simulator.fleet import Fleet as _Fleet

    fleet = _Fleet([_Group("g", "environmental", 3, interval_s=1.0)], seed=1, start_s=1000.0)
    for t in range(1001, 1011):
        fleet.tick(float(t))
    spec = fleet.inject("out_of_range", {"p": 1.0, "metrics": ["temperature"]},
                        duration_s=5, devices=[1])
    assert spec.start_s == 10.0
    hit = [m for t in range(1011, 1014) for i, m in fleet.tick(float(t)) if i == 1]
    assert hit and all(m.metrics["temperature"] < -273.15 for m in hit)
    later = [m for t in range(1016, 1019) for i, m in fleet.tick(float(t)) if i == 1]
    assert later and all(m.metrics["temperature"] > -100 for m in later)
    with pytest.raises(_ValidationError):
        fleet.inject("teleport")
    assert len(fleet.faults.specs) == 1


def test_a_shard_builds_only_its_own_messages_and_they_match_the_whole_fleet():
    import numpy as _np

    from simulator.fleet import DeviceGroup as _Group
    from simulator.fleet import Fleet as _Fleet

    def run(owned):
        fleet = _Fleet([_Group("g", "pump", 6, interval_s=1.0)], seed=5, start_s=0.0)
        fleet.owned = owned
        return [(i, m.encode()) for t in range(1, 8) for i, m in fleet.tick(float(t))]

    whole = run(None)
    mask = _np.zeros(6, dtype=bool)
    mask[1::2] = True
    shard = run(mask)
    assert shard and {i for i, _ in shard} == {1, 3, 5}
    assert shard == [(i, payload) for i, payload in whole if i % 2 == 1]
