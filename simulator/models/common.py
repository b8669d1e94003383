"""Battery and radio link: the two things every device type has.

They are separate from the sensor models because they fail independently of
what a device measures: a dying battery or a bad radio link is what takes
devices offline in the field, whatever their sensors say.
"""

from __future__ import annotations

import numpy as np

from simulator.models.base import SECONDS_PER_HOUR, BoolArray, FloatArray, ar1_step

# Open-circuit voltage of a typical Li-ion (NMC/graphite) cell against state of
# charge: steep near empty (the "knee"), a long flat plateau around 3.6-3.9 V,
# and a rise to 4.2 V when full.  Users see 100 % for a while, then a slow
# decline, then a sudden collapse: the shape alert thresholds must cope with.
OCV_SOC = np.array([0.0, 0.02, 0.05, 0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.90, 1.0])
OCV_V = np.array([3.00, 3.30, 3.48, 3.60, 3.68, 3.73, 3.77, 3.81, 3.86, 3.92, 3.99, 4.08, 4.20])

RSSI_MIN_DBM = -120.0
RSSI_MAX_DBM = -30.0


def ocv(soc: FloatArray) -> FloatArray:
    """Open-circuit cell voltage for state of charge ``soc`` (0..1)."""
    return np.asarray(np.interp(np.clip(soc, 0.0, 1.0), OCV_SOC, OCV_V))


class Battery:
    """Coulomb-counting battery: per-device capacity, average current and initial charge.

    The reported voltage is the rest (open-circuit) voltage, which is what a
    sleeping sensor measures before it wakes its radio; it therefore never
    rises while discharging."""

    def __init__(self, n: int, rng: np.random.Generator, *, capacity_mah: float = 2600.0,
                 current_ma: float = 1.0, initial_soc: tuple[float, float] = (0.55, 1.0)) -> None:
        self.n = n
        self.capacity_mah = capacity_mah * rng.uniform(0.85, 1.05, n)   # cells age unevenly
        self.current_ma = current_ma * rng.lognormal(0.0, 0.25, n)      # firmware/usage spread
        self.soc = rng.uniform(initial_soc[0], initial_soc[1], n)
        self.drain_factor = np.ones(n)

    @property
    def depleted(self) -> BoolArray:
        """Devices whose battery is empty: they brown out and go offline."""
        return np.asarray(self.soc <= 0.0)

    def step(self, dt_s: float) -> dict[str, FloatArray]:
        used_mah = self.current_ma * self.drain_factor * max(dt_s, 0.0) / SECONDS_PER_HOUR
        self.soc = np.maximum(self.soc - used_mah / self.capacity_mah, 0.0)
        return {"battery_pct": self.soc * 100.0, "battery_v": ocv(self.soc)}


class Radio:
    """Received signal strength from log-distance path loss with shadowing and fading.

    ``rssi = tx + gain - PL(1 m) - 10 n log10(d) + shadowing + fading``: the
    exponent ``n`` (2 free space, 3-4 indoors) and the distance differ per
    device; shadowing (walls, parked trucks) is slow AR(1) noise in dB; fast
    (Rayleigh) fading adds a skewed per-packet term with deep occasional fades.
    """

    PL_1M_DB = 40.0  # free-space loss at 1 m, 2.4 GHz

    def __init__(self, n: int, rng: np.random.Generator, *, median_distance_m: float = 40.0,
                 gain_db: float = 0.0, exponent: tuple[float, float] = (2.5, 3.5)) -> None:
        self.n = n
        self.rng = rng
        self.tx_dbm = rng.uniform(10.0, 20.0, n) + gain_db
        self.exponent = rng.uniform(exponent[0], exponent[1], n)
        self.distance_m = np.maximum(median_distance_m * rng.lognormal(0.0, 0.6, n), 2.0)
        self.shadow_sigma = rng.uniform(3.0, 6.0, n)
        self.shadow_db = rng.normal(0.0, 1.0, n) * self.shadow_sigma

    def step(self, dt_s: float, distance_m: FloatArray | None = None) -> dict[str, FloatArray]:
        """Advance shadowing; ``distance_m`` overrides the fixed distance (moving devices)."""
        d = self.distance_m if distance_m is None else np.maximum(distance_m, 1.0)
        self.shadow_db = ar1_step(self.shadow_db, dt_s, 120.0, self.shadow_sigma, self.rng)
        fading = np.clip(10.0 * np.log10(self.rng.exponential(1.0, self.n) + 1e-12), -20.0, 6.0)
        rssi = (self.tx_dbm - self.PL_1M_DB - 10.0 * self.exponent * np.log10(d)
                + self.shadow_db + fading)
        return {"rssi": np.clip(rssi, RSSI_MIN_DBM, RSSI_MAX_DBM)}
