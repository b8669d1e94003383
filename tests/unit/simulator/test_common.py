"""Battery discharge curve and radio signal strength."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.models.common import RSSI_MAX_DBM, RSSI_MIN_DBM, Battery, Radio, ocv

from .conftest import rng


def test_ocv_curve_monotonic_with_plateau_and_knee():
    soc = np.linspace(0, 1, 1001)
    v = ocv(soc)
    assert v[0] == 3.0 and v[-1] == 4.2
    assert (np.diff(v) > 0).all()
    slope = np.gradient(v, soc)
    plateau = slope[(soc > 0.2) & (soc < 0.8)].mean()
    knee = slope[soc < 0.08].mean()
    assert knee > 4 * plateau                       # flat middle, steep when nearly empty


def test_battery_discharges_monotonically_and_depletes():
    battery = Battery(50, rng(1), capacity_mah=100, current_ma=50)
    volts, pcts = [], []
    for _ in range(400):
        out = battery.step(60.0)
        volts.append(out["battery_v"])
        pcts.append(out["battery_pct"])
    volts_a, pcts_a = np.array(volts), np.array(pcts)
    assert (np.diff(volts_a, axis=0) <= 0).all() and (np.diff(pcts_a, axis=0) <= 0).all()
    assert battery.depleted.all()
    assert np.allclose(volts_a[-1], 3.0) and volts_a[0].max() <= 4.2
    assert len(np.unique(np.round(battery.capacity_mah, 6))) == 50


def test_battery_drain_factor_speeds_depletion():
    battery = Battery(10, rng(2), capacity_mah=2600, current_ma=1)
    battery.drain_factor = np.where(np.arange(10) < 5, 5000.0, 1.0)
    for _ in range(60):
        battery.step(60.0)
    assert battery.depleted[:5].all() and not battery.depleted[5:].any()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), distance=st.floats(0.5, 50_000),
       dt=st.floats(0.0, 600.0))
def test_rssi_always_within_bounds(seed, distance, dt):
    radio = Radio(64, rng(seed), median_distance_m=distance)
    for _ in range(3):
        out = radio.step(dt)["rssi"]
        assert (out >= RSSI_MIN_DBM).all() and (out <= RSSI_MAX_DBM).all()
    moving = radio.step(dt, np.full(64, distance))["rssi"]
    assert (moving >= RSSI_MIN_DBM).all() and (moving <= RSSI_MAX_DBM).all()


def test_rssi_weaker_far_away_and_varies_over_time():
    near, far = Radio(200, rng(3), median_distance_m=10), Radio(200, rng(3),
                                                                median_distance_m=400)
    near_v = np.stack([near.step(10.0)["rssi"] for _ in range(50)])
    far_v = np.stack([far.step(10.0)["rssi"] for _ in range(50)])
    assert near_v.mean() > far_v.mean() + 20
    assert (near_v.std(axis=0) > 0.5).all()         # shadowing and fading, not constant
