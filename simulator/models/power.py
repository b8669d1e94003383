"""Smart electricity meter: voltage, current, power factor, active power, energy.

Realism choices:
- Demand has a daily shape (night base load, a morning peak around 07:30, a
  larger evening peak around 19:30) and a weekly one (weekends lower: offices
  and workshops closed).  Each device mixes the shape with its own weights.
- Mains voltage is 230 V nominal with a per-site offset (distance from the
  transformer), slow grid variation, and a drop proportional to the current
  through the service cable's resistance.
- Power factor sits between 0.8 and 0.99; it is worse at light load, where
  motors and power supplies dominate the reactive current.
- Active power is computed as V * I * PF from the reported values, and energy
  integrates it, so the console's derived checks hold exactly.

Setpoints: ``demand_limit_kw`` (float or None) caps the active power of the
selected meters (demand-response curtailment).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from simulator.models.base import (
    SECONDS_PER_HOUR,
    BoolArray,
    FloatArray,
    SensorModel,
    ar1_step,
    hour_of_day,
    weekday,
)

NOMINAL_V = 230.0


def _bump(hours: FloatArray, centre: FloatArray | float, width: FloatArray | float) -> FloatArray:
    """A Gaussian bump on the 24 h circle (so a peak near midnight wraps)."""
    d = np.mod(hours - centre + 12.0, 24.0) - 12.0
    return np.asarray(np.exp(-0.5 * (d / width) ** 2))


class PowerMeterModel(SensorModel):
    name: ClassVar[str] = "power_meter"
    device_type: ClassVar[str] = "power_meter"
    metrics: ClassVar[tuple[str, ...]] = (
        "voltage", "current", "power", "power_factor", "energy_kwh",
    )
    battery_defaults: ClassVar[Mapping[str, float]] = {"capacity_mah": 2600.0,
                                                       "current_ma": 0.05}
    defaults: ClassVar[Mapping[str, Any]] = {
        "mean_peak_kw": 4.0,     # typical peak demand of one site
        "weekend_factor": 0.7,   # mean weekend/weekday demand ratio
        "utc_offset_h": 0.0,
    }
    setpoint_keys: ClassVar[frozenset[str]] = frozenset({"demand_limit_kw"})

    def __init__(self, n: int, rng: np.random.Generator, params: Mapping[str, Any]) -> None:
        super().__init__(n, rng, params)
        self.peak_kw = self.param("mean_peak_kw") * rng.lognormal(0.0, 0.35, n)
        self.base_share = rng.uniform(0.12, 0.3, n)
        self.morning_share = rng.uniform(0.3, 0.6, n)
        self.morning_hour = rng.normal(7.5, 0.5, n)
        self.evening_hour = rng.normal(19.5, 0.7, n)
        wf = self.param("weekend_factor")
        self.weekend_factor = np.clip(rng.normal(wf, 0.08, n), 0.3, 0.98)
        self.utc_offset_h = np.full(n, self.param("utc_offset_h"))
        self.v_site = NOMINAL_V + rng.normal(0.0, 2.5, n)
        self.r_cable = rng.uniform(0.05, 0.25, n)   # ohm, service cable + connections
        self.pf_full = rng.uniform(0.9, 0.99, n)
        self.pf_light_penalty = rng.uniform(0.03, 0.1, n)
        self.energy_kwh = rng.uniform(100.0, 20_000.0, n)  # meters are not new
        self.demand_noise = rng.normal(0.0, 0.1, n)
        self.grid_v = rng.normal(0.0, 1.5, n)
        self.demand_limit_kw = np.full(n, np.inf)

    def _apply_setpoints(self, mask: BoolArray, setpoints: Mapping[str, Any]) -> None:
        limit = setpoints.get("demand_limit_kw")
        self.demand_limit_kw[mask] = np.inf if limit is None else float(limit)

    def load_profile(self, t_s: float) -> FloatArray:
        """Demand as a fraction of each site's peak (before noise) at epoch ``t_s``."""
        h = hour_of_day(t_s, self.utc_offset_h)
        shape = (
            self.base_share
            + self.morning_share * _bump(h, self.morning_hour, 1.2)
            + (1.0 - self.base_share) * _bump(h, self.evening_hour, 1.8)
        )
        weekend = weekday(t_s, self.utc_offset_h) >= 5
        return np.asarray(shape * np.where(weekend, self.weekend_factor, 1.0))

    def step(self, t_s: float, dt_s: float) -> dict[str, FloatArray]:
        rng = self.rng
        profile = self.load_profile(t_s)
        self.demand_noise = ar1_step(self.demand_noise, dt_s, 900.0, 0.12, rng)
        demand_kw = self.peak_kw * profile * np.exp(self.demand_noise)
        demand_kw = np.minimum(demand_kw, self.demand_limit_kw)
        self.grid_v = ar1_step(self.grid_v, dt_s, 1800.0, 1.5, rng)
        v_open = self.v_site + self.grid_v + 0.2 * rng.standard_normal(self.n)
        relative = np.clip(demand_kw / self.peak_kw, 0.0, 1.0)
        pf = self.pf_full - self.pf_light_penalty * (1.0 - relative)
        pf = np.clip(pf + 0.005 * rng.standard_normal(self.n), 0.8, 0.99)
        current = demand_kw * 1000.0 / (v_open * pf)
        voltage = v_open - self.r_cable * current
        power = voltage * current * pf          # W, exactly consistent by construction
        self.energy_kwh = self.energy_kwh + power * max(dt_s, 0.0) / (1000.0 * SECONDS_PER_HOUR)
        return {
            "voltage": voltage,
            "current": current,
            "power": power,
            "power_factor": pf,
            "energy_kwh": self.energy_kwh.copy(),
        }
