"""Built-in sensor models, keyed by the name a DeviceGroup refers to."""

from __future__ import annotations

from simulator.models.base import SensorModel
from simulator.models.common import Battery, Radio
from simulator.models.environmental import EnvironmentalModel
from simulator.models.power import PowerMeterModel
from simulator.models.pump import PumpModel
from simulator.models.tracker import TrackerModel

BUILTIN_MODELS: dict[str, type[SensorModel]] = {
    "environmental": EnvironmentalModel,
    "power_meter": PowerMeterModel,
    "tracker": TrackerModel,
    "pump": PumpModel,
}

__all__ = [
    "BUILTIN_MODELS",
    "Battery",
    "EnvironmentalModel",
    "PowerMeterModel",
    "PumpModel",
    "Radio",
    "SensorModel",
    "TrackerModel",
]
