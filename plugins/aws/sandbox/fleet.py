"""The sandbox's demo fleet: the project's simulator, a modest fleet of
environmental sensors and pumps, one pump with a worn-out bearing so an
alert is raised within seconds of start-up (the default rule "Pump bearing
worn out", critical)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.model.device import Device
from core.ports.registry import DeviceRegistry
from simulator.api import RunningFleet
from simulator.faults import FaultPlan, FaultSpec
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from simulator.target import BrokerTarget

ORGANIZATION = "demo"
# Everything runs in one process on moto: a demo, not a load test (bench/ is for that).
MAX_DEVICES = 200


def demo_scenario(devices: int, rate: float) -> Scenario:
    """``devices`` (at least 2): a quarter pumps (at least one), the rest
    environmental sensors; every device sends ``rate`` readings a second."""
    if devices < 2:
        raise ValueError(f"--devices {devices}: the demo fleet needs at least 2 devices "
                         "(a sensor and the pump whose bearing fails)")
    if rate <= 0:
        raise ValueError(f"--rate {rate}: readings per second per device must be above 0")
    pumps = max(1, devices // 4)
    interval = 1.0 / rate
    groups = (
        DeviceGroup("office", "environmental", devices - pumps, org=ORGANIZATION,
                    firmware="1.4.2", interval_s=interval, id_prefix="office"),
        DeviceGroup("pumps", "pump", pumps, org=ORGANIZATION, firmware="2.1.0",
                    interval_s=interval, id_prefix="pump"),
    )
    faults = FaultPlan([FaultSpec("bearing_failure", {"time_to_failure_s": 5.0},
                                  group="pumps", devices=[0])])
    return Scenario(name="sandbox", groups=groups, faults=faults, seed=2026,
                    description="the sandbox's demo fleet", source="smartiot aws sandbox")


def start_demo_fleet(mqtt_url: str, devices: int, rate: float,
                     registry: DeviceRegistry | None = None,
                     trusted_key_paths: Sequence[Path] = ()) -> RunningFleet:
    """Connected to the sandbox's broker (which accepts any device).

    With ``registry`` the devices are registered before they connect, as a
    fleet on AWS is provisioned (each device a thing, in its type and its
    organization's group) before IoT Core lets it in. Their last-seen time
    and status still come only through the stream.

    ``trusted_key_paths``: where the devices read the code-signing keys they
    trust for OTA (re-read when a file changes), as a real fleet is
    provisioned with its team's public keys; the simulator's own OTA agent
    takes IoT jobs over the Jobs MQTT API."""
    fleet = RunningFleet(demo_scenario(devices, rate), target=BrokerTarget.parse(mqtt_url),
                         trusted_key_paths=trusted_key_paths)
    if registry is not None:
        registry.upsert_many([_device(*fleet.fleet.device_info(index))
                              for index in range(len(fleet.device_ids))])
    return fleet.start()


def _device(device_id: str, organization: str, device_type: str, firmware: str) -> Device:
    return Device(device_id, device_type=device_type, organization=organization,
                  firmware_version=firmware)
