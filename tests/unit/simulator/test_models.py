"""Statistical properties of the sensor models that a realistic fleet must show."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ValidationError
from simulator.models import BUILTIN_MODELS
from simulator.models.environmental import EnvironmentalModel
from simulator.models.power import PowerMeterModel
from simulator.models.pump import PumpModel
from simulator.models.tracker import TrackerModel, haversine_m

from .conftest import MONDAY, rng


def run(model, t0: float, dt: float, steps: int) -> dict[str, np.ndarray]:
    """Step ``model`` and stack the outputs: each metric becomes (steps, n)."""
    rows = [model.step(t0 + k * dt, dt) for k in range(steps)]
    return {m: np.stack([r[m] for r in rows]) for m in model.metrics}


@pytest.mark.parametrize("name", sorted(BUILTIN_MODELS))
def test_every_model_returns_float_arrays_per_metric(name):
    model = BUILTIN_MODELS[name](7, rng(), {})
    out = model.step(MONDAY, 1.0)
    assert tuple(out) == model.metrics
    for values in out.values():
        assert values.shape == (7,) and values.dtype == np.float64
        assert np.isfinite(values).all()


@pytest.mark.parametrize("name", sorted(BUILTIN_MODELS))
def test_devices_differ_from_each_other(name):
    out = run(BUILTIN_MODELS[name](50, rng(3), {}), MONDAY, 60.0, 30)
    for metric, values in out.items():
        per_device_mean = values.mean(axis=0)
        assert len(np.unique(np.round(per_device_mean, 6))) > 40, metric


def test_unknown_model_parameter_is_named():
    with pytest.raises(ValidationError, match="'mean_tmp_c'"):
        EnvironmentalModel(3, rng(), {"mean_tmp_c": 20})


def test_environmental_diurnal_peak_is_mid_afternoon():
    out = run(EnvironmentalModel(300, rng(1), {}), MONDAY, 600.0, 2 * 144)
    hourly = out["temperature"][144:].mean(axis=1).reshape(24, 6).mean(axis=1)
    assert 13 <= int(np.argmax(hourly)) <= 17
    assert 1 <= int(np.argmin(hourly)) <= 6                 # coldest around dawn


def test_environmental_peak_follows_the_local_time_zone():
    out = run(EnvironmentalModel(300, rng(1), {"utc_offset_h": 6}), MONDAY, 600.0, 2 * 144)
    hourly_utc = out["temperature"][144:].mean(axis=1).reshape(24, 6).mean(axis=1)
    assert 7 <= int(np.argmax(hourly_utc)) <= 11


def test_humidity_anticorrelated_with_temperature_and_in_range():
    out = run(EnvironmentalModel(40, rng(2), {}), MONDAY, 300.0, 288)
    corr = [np.corrcoef(out["temperature"][:, i], out["humidity"][:, i])[0, 1]
            for i in range(40)]
    assert np.median(corr) < -0.5
    assert np.mean(np.array(corr) < -0.5) > 0.8
    assert out["humidity"].min() >= 0 and out["humidity"].max() <= 100


def test_pressure_near_sea_level_and_lower_with_altitude():
    model = EnvironmentalModel(200, rng(4), {"max_altitude_m": 1500})
    out = run(model, MONDAY, 600.0, 50)
    mean = out["pressure"].mean(axis=0)
    assert mean.min() > 800 and mean.max() < 1060
    assert np.corrcoef(model.altitude_m, mean)[0, 1] < -0.9


def test_environmental_hvac_setpoint_pulls_temperature():
    model = EnvironmentalModel(20, rng(5), {"mean_temp_c": 5})
    mask = np.arange(20) < 10
    model.apply_setpoints(mask, {"hvac_setpoint_c": 21.0, "hvac_strength": 1.0})
    out = run(model, MONDAY, 600.0, 20)["temperature"].mean(axis=0)
    assert np.all(np.abs(out[:10] - 21) < 2) and out[10:].mean() < 12
    with pytest.raises(ValidationError, match="fan_speed"):
        model.apply_setpoints(mask, {"fan_speed": 3})


def test_active_power_is_exactly_v_i_pf_and_energy_accumulates():
    model = PowerMeterModel(100, rng(6), {})
    first = model.step(MONDAY, 60.0)
    out = run(model, MONDAY + 60, 60.0, 120)
    np.testing.assert_allclose(out["power"], out["voltage"] * out["current"]
                               * out["power_factor"], rtol=1e-12)
    assert (out["power_factor"] >= 0.8).all() and (out["power_factor"] <= 0.99).all()
    assert (np.abs(out["voltage"] - 230) < 23).all()
    gained = out["energy_kwh"][-1] - first["energy_kwh"]
    np.testing.assert_allclose(gained, out["power"].sum(axis=0) * 60 / 3.6e6, rtol=1e-9)
    assert (np.diff(out["energy_kwh"], axis=0) >= 0).all()


def test_weekend_load_lower_than_weekday_and_evening_peak():
    model = PowerMeterModel(100, rng(7), {})
    out = run(model, MONDAY, 900.0, 14 * 96)["power"]          # two weeks, Monday first
    daily = out.mean(axis=1).reshape(14, 96)
    weekday = daily[[0, 1, 2, 3, 4, 7, 8, 9, 10, 11]].mean()
    weekend = daily[[5, 6, 12, 13]].mean()
    assert weekend < 0.9 * weekday
    by_hour = daily.mean(axis=0).reshape(24, 4).mean(axis=1)
    assert by_hour[19] > 1.5 * by_hour[3] and by_hour[7] > by_hour[3]


def test_power_demand_limit_setpoint_caps_power():
    model = PowerMeterModel(10, rng(8), {"mean_peak_kw": 8})
    model.apply_setpoints(np.ones(10, bool), {"demand_limit_kw": 0.5})
    out = run(model, MONDAY + 19.5 * 3600, 60.0, 10)
    assert out["power"].max() <= 500.0 + 1e-6


@pytest.mark.parametrize("dt", [1.0, 5.0])
def test_tracker_speed_plausible_no_teleport_heading_follows_motion(dt):
    model = TrackerModel(200, rng(9), {})
    prev = model.step(MONDAY, 0.0)
    max_excess, angle_err, stopped = 0.0, [], 0
    for k in range(1, int(600 / dt)):
        cur = model.step(MONDAY + k * dt, dt)
        assert (cur["speed"] >= 0).all() and (cur["speed"] <= 33.0 + 1e-9).all()
        assert (cur["heading"] >= 0).all() and (cur["heading"] < 360).all()
        moved = haversine_m(prev["lat"], prev["lon"], cur["lat"], cur["lon"])
        allowed = np.maximum(prev["speed"], cur["speed"]) * dt
        max_excess = max(max_excess, float(np.max(moved - allowed * 1.005)))
        stopped += int((cur["speed"] == 0).sum())
        far = moved > 5
        bearing = np.degrees(np.arctan2(
            np.radians(cur["lon"] - prev["lon"]) * np.cos(np.radians(cur["lat"])),
            np.radians(cur["lat"] - prev["lat"])))
        diff = np.abs((bearing - cur["heading"] + 180) % 360 - 180)
        angle_err.extend(diff[far].tolist())
        prev = cur
    assert max_excess <= 0.01                      # never further than the speed allows
    assert stopped > 0                             # vehicles do stop
    assert np.median(angle_err) < 2 and np.quantile(angle_err, 0.9) < 15
    centre = haversine_m(prev["lat"], prev["lon"], np.float64(52.52), np.float64(13.405))
    assert centre.max() < 12_000                   # stays around the city


def test_pump_bearing_failure_trends_to_failure_with_rising_vibration():
    model = PumpModel(40, rng(10), {})
    model.apply_setpoints(np.ones(40, bool), {"load_setpoint": 0.8, "cycle": False})
    run(model, MONDAY, 60.0, 10)                    # settle at load
    failing = np.arange(40) < 20
    model.start_bearing_failure(failing, time_to_failure_s=3600)
    out = run(model, MONDAY + 600, 60.0, 75)
    wear, vib = out["bearing_wear"], out["vibration_rms"]
    assert (np.diff(wear, axis=0) >= 0).all()
    assert (wear[-1, failing] >= 0.999).all()
    assert (wear[-1, ~failing] - wear[0, ~failing]).max() < 1e-3
    early, late = vib[:5, failing].mean(axis=0), vib[-5:, failing].mean(axis=0)
    assert (late > 3 * early).all()
    growth = np.diff(wear[:, failing].mean(axis=1))
    assert growth[40:60].mean() > 2 * growth[:20].mean()   # accelerating, not linear
    assert out["temperature"][-1, failing].mean() > out["temperature"][-1, ~failing].mean()
    # across devices at the same load, vibration rises with wear
    assert np.corrcoef(wear[-1], vib[-5:].mean(axis=0))[0, 1] > 0.8


def test_pump_load_cycles_and_temperature_follows_load():
    model = PumpModel(60, rng(11), {"mean_period_s": 1200})
    out = run(model, MONDAY, 30.0, 480)
    running = out["load"] > 0.3
    assert 0.2 < running.mean() < 0.95
    assert np.corrcoef(out["load"].ravel(), out["vibration_rms"].ravel())[0, 1] > 0.6
    # the casing heats while running and cools while idle (with thermal lag)
    hot = np.where(running, out["temperature"], np.nan)[40:]
    cold = np.where(out["load"] < 0.05, out["temperature"], np.nan)[40:]
    both = np.isfinite(hot).any(axis=0) & np.isfinite(cold).any(axis=0)
    assert both.sum() > 30
    assert (np.nanmean(hot[:, both], axis=0) > np.nanmean(cold[:, both], axis=0)).mean() > 0.9
    with pytest.raises(ValidationError, match="load_setpoint"):
        model.apply_setpoints(np.ones(60, bool), {"load_setpoint": 1.5})
