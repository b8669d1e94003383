"""The contract every sensor model fulfils, plus the small maths they share.

A model owns the state of *all* devices of one group as numpy arrays and
advances them together, because 10,000 devices stepped one by one in Python
would cost more than the MQTT traffic they produce.  Everything random comes
from the generator handed in, so a fleet seeded the same way replays the same
values to the bit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from core.errors import ValidationError

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

SECONDS_PER_DAY = 86_400.0
SECONDS_PER_HOUR = 3_600.0


class SensorModel(ABC):
    """Vectorised model of ``n`` devices of one type.

    Subclasses declare ``name``, ``device_type``, ``metrics``, the tunable
    ``defaults`` (group-level parameters, from which per-device values are
    drawn at construction so no two devices look alike) and the
    ``setpoint_keys`` that :meth:`apply_setpoints` accepts.
    """

    name: ClassVar[str]
    device_type: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]
    defaults: ClassVar[Mapping[str, Any]] = {}
    setpoint_keys: ClassVar[frozenset[str]] = frozenset()
    # Defaults for the shared Battery/Radio of this device type (see models.common):
    # mains-powered meters and pumps only trickle their backup cell, trackers drain fast.
    battery_defaults: ClassVar[Mapping[str, float]] = {"capacity_mah": 2600.0,
                                                       "current_ma": 0.5}
    radio_defaults: ClassVar[Mapping[str, float]] = {"median_distance_m": 40.0, "gain_db": 0.0}

    def __init__(self, n: int, rng: np.random.Generator, params: Mapping[str, Any]) -> None:
        if n < 0:
            raise ValidationError(f"model {self.name!r}: device count must be >= 0, got {n}")
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            allowed = ", ".join(sorted(self.defaults)) or "none"
            raise ValidationError(
                f"model {self.name!r}: unknown parameter(s) {_names(unknown)}; "
                f"allowed: {allowed}"
            )
        self.n = n
        self.rng = rng
        self.params: dict[str, Any] = {**self.defaults, **params}

    def param(self, key: str) -> float:
        """A numeric group parameter, with an error naming the model and key if it is not."""
        value = self.params[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(
                f"model {self.name!r}: parameter {key!r} must be a number, got {value!r}"
            )
        return float(value)

    @abstractmethod
    def step(self, t_s: float, dt_s: float) -> dict[str, FloatArray]:
        """Advance every device by ``dt_s`` seconds to epoch time ``t_s``; one (n,) array
        per name in :attr:`metrics`."""

    def radio_distance_m(self) -> FloatArray | None:
        """Distance to the gateway if it changes with the model's state (moving devices)."""
        return None

    def apply_setpoints(self, mask: BoolArray, setpoints: Mapping[str, Any]) -> None:
        """Apply a shadow's desired state to the devices in ``mask``.

        The base model accepts no keys; subclasses list theirs in ``setpoint_keys``.
        Unknown keys raise instead of being ignored, so a typo in a desired state
        shows up in the simulator log rather than as a device that never reacts."""
        unknown = sorted(set(setpoints) - self.setpoint_keys)
        if unknown:
            allowed = ", ".join(sorted(self.setpoint_keys)) or "none"
            raise ValidationError(
                f"model {self.name!r}: unknown setpoint(s) {_names(unknown)}; "
                f"accepted: {allowed}"
            )
        self._apply_setpoints(np.asarray(mask, dtype=bool), setpoints)

    def _apply_setpoints(self, mask: BoolArray, setpoints: Mapping[str, Any]) -> None:
        """Hook for subclasses; called with validated keys."""
        del mask, setpoints  # a model without setpoints has nothing to change


def _names(keys: list[str]) -> str:
    return ", ".join(repr(k) for k in keys)


def ar1_step(
    state: FloatArray, dt_s: float, tau_s: float | FloatArray, sigma: float | FloatArray,
    rng: np.random.Generator,
) -> FloatArray:
    """Exact Ornstein-Uhlenbeck update: mean-reverting noise with time constant ``tau_s``
    and stationary standard deviation ``sigma``.

    Real disturbances (weather, radio shadowing, grid voltage) are correlated in
    time; white noise would make readings jitter unnaturally and a fixed AR
    coefficient would make the statistics depend on the reporting interval.
    The exact discretisation keeps them independent of ``dt_s`` (dt=0: no change).
    """
    a = np.exp(-dt_s / np.asarray(tau_s, dtype=np.float64))
    noise = rng.standard_normal(state.shape)
    return np.asarray(state * a + np.asarray(sigma) * np.sqrt(1.0 - a * a) * noise)


def random_walk_step(
    state: FloatArray, dt_s: float, sigma_per_sqrt_h: float | FloatArray,
    rng: np.random.Generator,
) -> FloatArray:
    """Brownian drift (sensor ageing, slow calibration loss): variance grows with time."""
    scale = np.asarray(sigma_per_sqrt_h) * np.sqrt(max(dt_s, 0.0) / SECONDS_PER_HOUR)
    return np.asarray(state + scale * rng.standard_normal(state.shape))


def hour_of_day(t_s: float, utc_offset_h: float | FloatArray = 0.0) -> FloatArray:
    """Local clock hour in [0, 24) for epoch seconds ``t_s``."""
    return np.asarray(np.mod(t_s / SECONDS_PER_HOUR + np.asarray(utc_offset_h), 24.0))


def weekday(t_s: float, utc_offset_h: float | FloatArray = 0.0) -> NDArray[np.int64]:
    """Local weekday, Monday = 0 (1970-01-01 was a Thursday, hence the +3)."""
    local = t_s + np.asarray(utc_offset_h) * SECONDS_PER_HOUR
    return np.asarray((np.floor(local / SECONDS_PER_DAY).astype(np.int64) + 3) % 7)
