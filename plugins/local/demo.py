"""What the first-run demo fleet looks like to a person: names, places, a firmware update.

A simulated device only says its id; a real fleet is registered with a name a
technician recognises and the site it is installed at. Without that the
device list is a column of ids and the dashboard's map stays empty, so the
demo registers its devices before the hub hears from them (the hub's traffic
updates never overwrite a name or a place, see ``record_activity``). Fixed
devices get their site's position; trackers get their depot, and the map
follows their reported ``lat``/``lon`` once they drive.

The firmware update gives a new user something to deploy without first
building an image: pump 2.2.0, newer than the 2.1.0 the demo pumps run,
signed with this console's code-signing key, which the demo devices trust.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from core.crypto.keystore import CodeSigningKeys
from core.errors import SmartIotError
from core.model import Device, DeviceStatus, Firmware, Location, SemVer
from core.store import Store
from simulator.models import BUILTIN_MODELS
from simulator.scenario import Scenario

log = logging.getLogger(__name__)

DEMO_IMAGE_TYPE = "pump"
DEMO_IMAGE_VERSION = "2.2.0"
DEMO_IMAGE_NOTES = (
    "Demo image: bearing-wear model v2 (earlier warning of a failing bearing). "
    "Deploy it to a few pumps from Firmware > Deployments > New deployment.")


@dataclass(frozen=True, slots=True)
class Site:
    label: str
    latitude: float
    longitude: float
    tag: str


# Berlin, where the tracker model's vehicles drive by default.
HQ = Site("HQ, Alexanderplatz", 52.52190, 13.41320, "hq")
WATERWORKS = Site("Waterworks Friedrichshagen", 52.44830, 13.62750, "waterworks")
SUBSTATIONS = (
    Site("Substation Mitte", 52.51300, 13.39000, "grid"),
    Site("Substation Kreuzberg", 52.49750, 13.41900, "grid"),
    Site("Substation Moabit", 52.52700, 13.34200, "grid"),
    Site("Substation Friedrichshain", 52.51400, 13.45300, "grid"),
)
DEPOT = Site("Depot Westhafen", 52.53600, 13.34400, "fleet")

_OFFICE_ROOMS = ("Reception", "Meeting room Spree", "Meeting room Havel", "Kitchen",
                 "Open space west", "Open space east", "Lab", "Print room", "CEO office",
                 "Workshop", "Lobby", "Archive", "Quiet room", "Training room", "Canteen")


def _nudge(site: Site, index: int, step: float = 0.00012) -> tuple[float, float]:
    """Devices of one site a few metres apart, so the map shows each of them."""
    return (site.latitude + step * (index % 4 - 1.5), site.longitude + step * (index // 4 - 1))


def describe(device_id: str, device_type: str) -> tuple[str, Site, tuple[float, float]] | None:
    """Name, site and position of a demo device; None for ids the demo does not know."""
    prefix, _, number = device_id.rpartition("-")
    if not number.isdigit():
        return None
    i = int(number)
    if prefix == "office":
        room = _OFFICE_ROOMS[i % len(_OFFICE_ROOMS)]
        return f"{room} sensor", HQ, _nudge(HQ, i)
    if prefix == "server":
        return "Server room sensor", HQ, _nudge(HQ, 15 + i)
    if prefix == "pump":
        return f"Pump P{i + 1}", WATERWORKS, _nudge(WATERWORKS, i, 0.0006)
    if prefix == "meter":
        site = SUBSTATIONS[i % len(SUBSTATIONS)]
        return f"Meter {site.label.split()[-1]} {i // len(SUBSTATIONS) + 1}", site, \
            _nudge(site, i // len(SUBSTATIONS))
    if prefix == "van" and device_type == "tracker":
        return f"Van B-SI {101 + i}", DEPOT, _nudge(DEPOT, i, 0.0004)
    return None


def scenario_devices(scenario: Scenario) -> list[tuple[str, str, str, str]]:
    """``(device_id, device_type, organization, firmware)`` of every scenario device."""
    out = []
    for group in scenario.groups:
        model = BUILTIN_MODELS.get(group.model_name)
        device_type = group.device_type or (model.device_type if model else group.model_name)
        out += [(f"{group.prefix}-{i:05d}", device_type, group.org, group.firmware)
                for i in range(group.count)]
    return out


def register_demo_devices(store: Store, devices: Sequence[tuple[str, str, str, str]]) -> int:
    """Register ``(device_id, device_type, organization, firmware)`` with a name and
    a place. A device already registered keeps what a person gave it; only a
    missing name or location is filled in (a store from an earlier version)."""
    changed: list[Device] = []
    for device_id, device_type, organization, firmware in devices:
        described = describe(device_id, device_type)
        if described is None:
            continue
        name, site, (lat, lon) = described
        location = Location(lat, lon, site.label)
        existing = store.registry.find(device_id)
        if existing is None:
            changed.append(Device(device_id, name=name, device_type=device_type,
                                  organization=organization, status=DeviceStatus.OFFLINE,
                                  location=location, firmware_version=firmware,
                                  tags=frozenset({"demo", site.tag})))
        elif not existing.name or existing.location is None:
            changed.append(replace(existing, name=existing.name or name,
                                   location=existing.location or location))
    if changed:
        store.registry.upsert_many(changed)
    return len(changed)


def demo_image(device_type: str = DEMO_IMAGE_TYPE, version: str = DEMO_IMAGE_VERSION) -> bytes:
    """A deterministic stand-in for a firmware binary (the simulated devices check
    size, hash and signature, not the code)."""
    header = f"SMARTIOT-DEMO-FIRMWARE {device_type} {version}\n".encode()
    body = hashlib.sha256(header).digest() * 2048  # 64 KiB, like a small MCU image
    return header + body


def offer_demo_firmware(store: Store, codesign_dir: Path) -> Firmware | None:
    """Put the demo update in the library once, signed with the console's key.

    Done only while the library holds no image of that device type, so an
    engineer's own images (or their deleting this one) are never overridden.
    Without a way to keep the signing key's passphrase the update is left out,
    with the reason in the log, rather than offering an image the devices
    would refuse."""
    if store.firmware.list(DEMO_IMAGE_TYPE):
        return None
    image = demo_image()
    try:
        signature, key_id = CodeSigningKeys(codesign_dir).sign(image)
    except SmartIotError as exc:
        log.warning("demo firmware update not offered: %s", exc)
        return None
    firmware = Firmware(version=SemVer.parse(DEMO_IMAGE_VERSION), device_type=DEMO_IMAGE_TYPE,
                        size=len(image), sha256=hashlib.sha256(image).hexdigest(),
                        signature=signature, key_id=key_id, release_notes=DEMO_IMAGE_NOTES)
    try:
        store.firmware.add(firmware, image)
    except SmartIotError as exc:  # another process offered it first
        log.info("demo firmware update not added: %s", exc)
        return None
    return firmware
