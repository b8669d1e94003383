"""Each fault changes the data the way the real failure does, and bad specs are named."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ValidationError
from core.protocol.payloads import ProtocolError, Telemetry, decode_telemetry
from simulator.faults import (
    FaultPlan,
    FaultSpec,
    Outgoing,
    burst,
    duplicate,
    is_valid_json,
    loss,
    malformed,
    reorder,
)
from simulator.fleet import DeviceGroup, Fleet

from .conftest import MONDAY, rng

N, START, STEPS = 40, 20, 120
ON = START - 1          # row k of a series is sim second k + 1: the first faulty row
FAULTY = tuple(range(20))


def series(fault: FaultSpec | None, metric: str = "temperature") -> np.ndarray:
    """(STEPS, N) values of ``metric`` from an environmental fleet reporting every second."""
    fleet = Fleet([DeviceGroup("env", "environmental", N, interval_s=1.0)], seed=5,
                  start_s=MONDAY, faults=FaultPlan([fault] if fault else []))
    out = np.full((STEPS, N), np.inf)
    for k in range(STEPS):
        for i, msg in fleet.tick(MONDAY + 1 + k):   # phases are < 1 s: all due from 1 s
            out[k, i] = msg.metrics[metric]
    return out


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return series(None)


def spec(kind: str, **params: object) -> FaultSpec:
    return FaultSpec(kind, params, start_s=START, devices=FAULTY)


def test_value_faults_leave_the_model_stream_untouched(clean):
    faulty = series(spec("spike", p=0.1))
    np.testing.assert_array_equal(faulty[:, 20:], clean[:, 20:])
    np.testing.assert_array_equal(faulty[:ON], clean[:ON])


def test_stuck_sensor_has_zero_variance_at_its_last_value(clean):
    faulty = series(spec("stuck"))
    after = faulty[ON:, :20]
    assert (np.ptp(after, axis=0) == 0).all()
    np.testing.assert_array_equal(after[0], clean[ON - 1, :20])
    assert (clean[ON:, :20].std(axis=0) > 0).all()


def test_spikes_are_rare_large_outliers(clean):
    faulty = series(spec("spike", p=0.05, magnitude_sigma=10))
    sigma = np.diff(clean, axis=0).std(axis=0)           # sample-to-sample noise per device
    jump = np.abs(faulty - clean)[ON:, :20] / sigma[:20]
    outliers = jump > 8
    assert 0.02 < outliers.mean() < 0.09
    assert (jump[~outliers] == 0).all()


def test_drift_is_a_growing_mean_offset(clean):
    faulty = series(spec("drift", rate_per_h=36.0))      # 0.01 °C per second
    offset = (faulty - clean)[:, :20].mean(axis=1)
    assert (offset[:ON] == 0).all()
    assert (np.diff(offset[ON:]) > 0).all()
    assert offset[-1] == pytest.approx(36.0 * (STEPS - START) / 3600)


def test_out_of_range_values_are_physically_impossible():
    faulty = series(spec("out_of_range"))
    assert (faulty[ON:, :20] == -300.0).all()          # below absolute zero
    assert (faulty[:, 20:] > -60).all()


def test_nan_fault_produces_nan_that_the_hub_rejects():
    faulty = series(spec("nan", p=0.5))
    assert np.isnan(faulty[ON:, :20]).mean() == pytest.approx(0.5, abs=0.1)
    assert not np.isnan(faulty[:, 20:]).any()
    payload = Telemetry("env-00000", 1, 1, {"temperature": float("nan")}).encode()
    with pytest.raises(ProtocolError) as err:
        decode_telemetry(payload, topic_device_id="env-00000", now_ms=1)
    assert err.value.reason == "non_finite"


def messages(n: int = 20_000, devices: int = 50) -> list[Outgoing]:
    return [Outgoing(float(k // devices), k % devices,
                     Telemetry(f"d-{k % devices:05d}", k // devices, k // devices * 1000,
                               {"x": k * 0.5}).encode())
            for k in range(n)]


def test_loss_rate_within_tolerance():
    msgs = messages()
    kept = loss(msgs, 0.2, rng(1))
    assert len(kept) / len(msgs) == pytest.approx(0.8, abs=0.015)
    only = np.arange(50) < 10
    kept = loss(msgs, 1.0, rng(1), only)
    assert {m.device for m in kept} == set(range(10, 50))


def test_duplicates_are_byte_identical_and_adjacent():
    msgs = messages(5000)
    out = duplicate(msgs, 0.1, rng(2))
    extra = len(out) - len(msgs)
    assert extra / len(msgs) == pytest.approx(0.1, abs=0.02)
    pairs = sum(a == b for a, b in itertools.pairwise(out))
    assert pairs == extra
    assert Counter(out) - Counter(msgs) == Counter({m: 1 for m in out if Counter(out)[m] == 2})


def test_reorder_keeps_the_multiset_and_breaks_per_device_order():
    msgs = messages(5000)
    out = reorder(msgs, 0.1, 3, rng(3))
    assert Counter(m.payload for m in out) == Counter(m.payload for m in msgs)
    inversions = 0
    for device in range(50):
        seqs = [json.loads(m.payload)["seq"] for m in out if m.device == device]
        inversions += sum(b < a for a, b in itertools.pairwise(seqs))
        assert all(b >= a - 3 for a, b in itertools.pairwise(seqs))  # within window
    assert inversions > 100
    assert all(b.t_s >= a.t_s for a, b in itertools.pairwise(out))   # delayed, never early


def test_malformed_payloads_are_never_valid_json():
    msgs = messages(4000)
    out = malformed(msgs, 0.25, rng(4))
    changed = [o for o, m in zip(out, msgs, strict=True) if o.payload != m.payload]
    assert len(changed) / len(msgs) == pytest.approx(0.25, abs=0.03)
    assert not any(is_valid_json(o.payload) for o in changed)
    assert all(is_valid_json(o.payload) for o, m in zip(out, msgs, strict=True)
               if o.payload == m.payload)


def test_burst_releases_with_original_timestamps_and_seq():
    msgs = messages(50 * 100)
    held = np.arange(50) == 7
    out = burst(msgs, 10.0, 40.0, held)
    assert Counter(out) != Counter(msgs) and len(out) == len(msgs)
    released = [m for m in out if m.device == 7 and m.t_s == 40.0]
    bodies = [json.loads(m.payload) for m in released]
    assert [b["seq"] for b in bodies] == list(range(10, 41))     # 30 held + the one at 40 s
    assert [b["ts"] for b in bodies[:-1]] == [s * 1000 for s in range(10, 40)]
    assert all(b.t_s >= a.t_s for a, b in itertools.pairwise(out))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "smoke"}, "unknown fault kind 'smoke'"),
        ({"kind": "spike", "params": {"prob": 0.1}}, "fault 'spike': unknown parameter 'prob'"),
        ({"kind": "loss", "params": {"p": 1.5}}, "fault 'loss': parameter 'p'"),
        ({"kind": "reorder", "params": {"window": 0}}, "fault 'reorder': parameter 'window'"),
        ({"kind": "flap", "params": {"period_s": 5, "down_s": 10}}, "'down_s'"),
        ({"kind": "drop", "duration_s": -1}, "fault 'drop': duration_s"),
        ({"kind": "drop", "fraction": 0.2, "devices": [1]}, "either fraction or devices"),
        ({"kind": "stuck", "params": {"metrics": "temperature"}}, "'metrics'"),
    ],
)
def test_fault_spec_validation_names_fault_and_key(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        FaultSpec(**kwargs)


@settings(max_examples=40, deadline=None)
@given(p=st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not 0 <= v <= 1))
def test_probabilities_outside_zero_one_are_rejected(p):
    with pytest.raises(ValidationError, match="'p'"):
        FaultSpec("duplicate", {"p": p})


def test_fraction_selects_exactly_and_deterministically():
    plan = FaultPlan([FaultSpec("drop", fraction=0.2, start_s=600, duration_s=60)])
    (first,) = plan.resolve("pumps", 1000, seed=1)
    assert first.mask.sum() == 200
    np.testing.assert_array_equal(FaultPlan(plan.specs).resolve("pumps", 1000, 1)[0].mask,
                                  first.mask)
    assert plan.active(599, "pumps", 1000, 1) == []
    assert len(plan.active(600, "pumps", 1000, 1)) == 1
    assert plan.active(660, "pumps", 1000, 1) == []


def test_fleet_rejects_faults_for_unknown_groups_and_metrics():
    groups = [DeviceGroup("env", "environmental", 3)]
    with pytest.raises(ValidationError, match="unknown group 'pumps'"):
        Fleet(groups, faults=FaultPlan([FaultSpec("stuck", group="pumps")]))
    with pytest.raises(ValidationError, match="unknown metric 'rpm'"):
        Fleet(groups, faults=FaultPlan([FaultSpec("stuck", {"metrics": ["rpm"]})]))
    with pytest.raises(ValidationError, match="no bearings"):
        Fleet(groups, faults=FaultPlan([FaultSpec("bearing_failure", group="env")]))
