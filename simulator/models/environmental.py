"""Indoor/outdoor environmental sensor: temperature, relative humidity, pressure.

Realism choices:
- Air temperature follows the sun but lags it: the daily maximum is in the
  mid-afternoon (about 15:00 local), the minimum near dawn.  Each device gets
  its own mean, amplitude and peak hour (shade, exposure, enclosure).
- Weather moves temperature for hours at a time, so the noise is AR(1) with a
  time constant of hours, and cheap sensors drift slowly (random walk).
- Relative humidity is anti-correlated with temperature because the water in
  the air changes slowly while the saturation pressure rises ~6-7 %/K; RH
  therefore falls by a few percentage points per kelvin in the afternoon.
- Pressure is ~1013 hPa at sea level, lower with altitude (barometric
  formula), and moves slowly with synoptic weather shared across the region.

Setpoints: ``hvac_setpoint_c`` (float, °C) pulls indoor devices towards the
set temperature with ``hvac_strength`` (0..1, default 0.8; 0 switches HVAC off).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from core.errors import ValidationError
from simulator.models.base import (
    SECONDS_PER_HOUR,
    BoolArray,
    FloatArray,
    SensorModel,
    ar1_step,
    hour_of_day,
    random_walk_step,
)

SEA_LEVEL_HPA = 1013.25
SCALE_HEIGHT_M = 8434.0  # isothermal scale height of the lower atmosphere


class EnvironmentalModel(SensorModel):
    name: ClassVar[str] = "environmental"
    device_type: ClassVar[str] = "environmental"
    metrics: ClassVar[tuple[str, ...]] = ("temperature", "humidity", "pressure")
    defaults: ClassVar[Mapping[str, Any]] = {
        "mean_temp_c": 18.0,       # group climate
        "amplitude_c": 5.0,        # typical half peak-to-peak daily swing
        "peak_hour": 15.0,         # local hour of the daily maximum
        "utc_offset_h": 0.0,       # local time zone of the site
        "mean_humidity_pct": 60.0,
        "max_altitude_m": 400.0,   # devices spread between 0 and this altitude
    }
    setpoint_keys: ClassVar[frozenset[str]] = frozenset({"hvac_setpoint_c", "hvac_strength"})

    def __init__(self, n: int, rng: np.random.Generator, params: Mapping[str, Any]) -> None:
        super().__init__(n, rng, params)
        self.offset_c = rng.normal(self.param("mean_temp_c"), 2.5, n)
        self.amplitude_c = self.param("amplitude_c") * rng.uniform(0.6, 1.4, n)
        self.peak_hour = rng.normal(self.param("peak_hour"), 0.6, n)
        self.utc_offset_h = np.full(n, self.param("utc_offset_h"))
        self.base_rh = np.clip(rng.normal(self.param("mean_humidity_pct"), 6.0, n), 15, 95)
        self.rh_per_k = rng.uniform(3.0, 5.0, n)   # RH points lost per kelvin of warming
        self.altitude_m = rng.uniform(0.0, self.param("max_altitude_m"), n)
        self.weather_tau_s = rng.uniform(3.0, 8.0, n) * SECONDS_PER_HOUR
        self.drift_sigma = rng.uniform(0.005, 0.03, n)  # °C per sqrt(hour)
        self.sensor_sigma = rng.uniform(0.02, 0.08, n)
        # state
        self.weather_c = rng.normal(0.0, 1.0, n)
        self.drift_c = np.zeros(n)
        self.rh_noise = rng.normal(0.0, 2.0, n)
        self.regional_hpa = float(rng.normal(0.0, 6.0))  # synoptic weather, shared
        self.local_hpa = rng.normal(0.0, 0.3, n)
        self.hvac_setpoint = np.full(n, np.nan)
        self.hvac_strength = np.zeros(n)

    def _apply_setpoints(self, mask: BoolArray, setpoints: Mapping[str, Any]) -> None:
        if "hvac_setpoint_c" in setpoints:
            value = setpoints["hvac_setpoint_c"]
            if value is None:
                self.hvac_setpoint[mask] = np.nan
            else:
                self.hvac_setpoint[mask] = float(value)
                self.hvac_strength[mask] = np.where(
                    self.hvac_strength[mask] == 0, 0.8, self.hvac_strength[mask]
                )
        if "hvac_strength" in setpoints:
            strength = float(setpoints["hvac_strength"])
            if not 0.0 <= strength <= 1.0:
                raise ValidationError(
                    f"model 'environmental': setpoint 'hvac_strength' must be 0..1, got {strength}"
                )
            self.hvac_strength[mask] = strength

    def step(self, t_s: float, dt_s: float) -> dict[str, FloatArray]:
        rng = self.rng
        hours = hour_of_day(t_s, self.utc_offset_h)
        diurnal = self.amplitude_c * np.cos(2.0 * np.pi * (hours - self.peak_hour) / 24.0)
        self.weather_c = ar1_step(self.weather_c, dt_s, self.weather_tau_s, 1.5, rng)
        self.drift_c = random_walk_step(self.drift_c, dt_s, self.drift_sigma, rng)
        outdoor = self.offset_c + diurnal + self.weather_c
        hvac = np.where(np.isnan(self.hvac_setpoint), 0.0, self.hvac_strength)
        target = np.where(np.isnan(self.hvac_setpoint), outdoor, self.hvac_setpoint)
        air = (1.0 - hvac) * outdoor + hvac * target
        temperature = air + self.drift_c + self.sensor_sigma * rng.standard_normal(self.n)

        self.rh_noise = ar1_step(self.rh_noise, dt_s, 2.0 * SECONDS_PER_HOUR, 2.5, rng)
        humidity = self.base_rh - self.rh_per_k * (air - self.offset_c) + self.rh_noise
        humidity = np.clip(humidity + 0.3 * rng.standard_normal(self.n), 0.0, 100.0)

        self.regional_hpa = float(
            ar1_step(np.array([self.regional_hpa]), dt_s, 48 * SECONDS_PER_HOUR, 8.0, rng)[0]
        )
        self.local_hpa = ar1_step(self.local_hpa, dt_s, 6 * SECONDS_PER_HOUR, 0.4, rng)
        sea_level = SEA_LEVEL_HPA + self.regional_hpa + self.local_hpa
        pressure = sea_level * np.exp(-self.altitude_m / SCALE_HEIGHT_M)
        pressure = pressure + 0.05 * rng.standard_normal(self.n)
        return {"temperature": temperature, "humidity": humidity, "pressure": pressure}
