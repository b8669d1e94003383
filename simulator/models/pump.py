"""Industrial pump with a degrading bearing: load, vibration, temperature, wear.

Realism choices:
- Pumps run in duty cycles (fill a tank, stop, repeat) with a per-device
  period and duty; the motor load follows the command with a first-order lag.
- Vibration velocity RMS (mm/s, as in ISO 10816) and casing temperature rise
  with load; a worn bearing adds vibration and friction heat that grow with
  the square of the wear, which is why predictive maintenance watches them.
- ``bearing_wear`` (0 = new, 1 = failed) grows exponentially: damage makes
  more damage (spalling), so the curve is flat for months and then bends up.
  :meth:`start_bearing_failure` switches a subset to an accelerated rate that
  reaches failure in ``time_to_failure_s`` (default one hour), so a failure
  trend is visible in a demo.

Setpoints: ``load_setpoint`` (0..1, the running load level) and ``cycle``
(bool; False runs continuously at the setpoint instead of duty-cycling).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from core.errors import ValidationError
from simulator.models.base import BoolArray, FloatArray, SensorModel, ar1_step

WEAR_FLOOR = 0.05  # offset of the exponential growth, so a new bearing still wears


class PumpModel(SensorModel):
    name: ClassVar[str] = "pump"
    device_type: ClassVar[str] = "pump"
    metrics: ClassVar[tuple[str, ...]] = ("load", "vibration_rms", "temperature", "bearing_wear")
    battery_defaults: ClassVar[Mapping[str, float]] = {"capacity_mah": 2600.0,
                                                       "current_ma": 0.05}
    defaults: ClassVar[Mapping[str, Any]] = {
        "mean_period_s": 2400.0,    # duty-cycle period
        "ambient_c": 22.0,
        "max_initial_wear": 0.25,
    }
    setpoint_keys: ClassVar[frozenset[str]] = frozenset({"load_setpoint", "cycle"})

    def __init__(self, n: int, rng: np.random.Generator, params: Mapping[str, Any]) -> None:
        super().__init__(n, rng, params)
        self.period_s = self.param("mean_period_s") * rng.uniform(0.5, 1.5, n)
        self.duty = rng.uniform(0.4, 0.85, n)
        self.phase = rng.random(n)
        self.setpoint = rng.uniform(0.55, 0.9, n)
        self.cycling = np.ones(n, dtype=bool)
        self.ambient = self.param("ambient_c") + rng.normal(0.0, 3.0, n)
        self.heat_rise = rng.uniform(18.0, 32.0, n)     # K at full load
        self.vib_base = rng.uniform(0.8, 1.8, n)        # mm/s at full load, healthy
        self.wear = rng.uniform(0.0, self.param("max_initial_wear"), n)
        self.wear_rate = rng.uniform(2e-9, 8e-9, n)     # 1/s; years to failure
        self.failing = np.zeros(n, dtype=bool)
        self.load = np.where(self._command(0.0) > 0, self.setpoint, 0.0)
        self.temperature = self.ambient + self.heat_rise * self.load
        self.load_noise = np.zeros(n)

    def _apply_setpoints(self, mask: BoolArray, setpoints: Mapping[str, Any]) -> None:
        if "load_setpoint" in setpoints:
            value = float(setpoints["load_setpoint"])
            if not 0.0 <= value <= 1.0:
                raise ValidationError(
                    f"model 'pump': setpoint 'load_setpoint' must be 0..1, got {value}"
                )
            self.setpoint[mask] = value
        if "cycle" in setpoints:
            self.cycling[mask] = bool(setpoints["cycle"])

    def start_bearing_failure(self, mask: BoolArray, time_to_failure_s: float = 3600.0) -> None:
        """Accelerate wear of ``mask`` so it reaches 1.0 after ~``time_to_failure_s``."""
        mask = np.asarray(mask, dtype=bool) & ~self.failing
        if time_to_failure_s <= 0:
            raise ValidationError(
                f"fault 'bearing_failure': time_to_failure_s must be > 0, got {time_to_failure_s}"
            )
        rate = np.log((1.0 + WEAR_FLOOR) / (self.wear + WEAR_FLOOR)) / time_to_failure_s
        self.wear_rate = np.where(mask, np.maximum(rate, 1e-9), self.wear_rate)
        self.failing |= mask

    def _command(self, t_s: float) -> FloatArray:
        in_cycle = np.mod(t_s / self.period_s + self.phase, 1.0) < self.duty
        return np.asarray(np.where(~self.cycling | in_cycle, self.setpoint, 0.0))

    def step(self, t_s: float, dt_s: float) -> dict[str, FloatArray]:
        rng, dt_s = self.rng, max(dt_s, 0.0)
        command = self._command(t_s)
        self.load_noise = ar1_step(self.load_noise, dt_s, 60.0, 0.02, rng)
        self.load = self.load + (command - self.load) * (1.0 - np.exp(-dt_s / 20.0))
        load = np.clip(self.load + np.where(command > 0, self.load_noise, 0.0), 0.0, 1.0)

        # exponential damage growth; failing bearings use their accelerated rate at any load
        stress = np.where(self.failing, 1.0, 0.5 + load)
        grown = (self.wear + WEAR_FLOOR) * np.exp(self.wear_rate * stress * dt_s) - WEAR_FLOOR
        self.wear = np.minimum(grown, 1.0)
        w2 = self.wear**2

        running = 0.15 + 0.85 * load
        vibration = (self.vib_base + 14.0 * w2) * running
        vibration = vibration * np.exp(0.08 * rng.standard_normal(self.n))

        target_t = self.ambient + (self.heat_rise + 30.0 * w2) * load
        self.temperature = self.temperature + (target_t - self.temperature) * (
            1.0 - np.exp(-dt_s / 600.0)
        )
        temperature = self.temperature + 0.1 * rng.standard_normal(self.n)
        return {
            "load": load,
            "vibration_rms": vibration,
            "temperature": temperature,
            "bearing_wear": self.wear.copy(),
        }
