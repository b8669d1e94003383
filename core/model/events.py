"""Live fleet events: one frozen type per thing that can happen.

The live feed (``core.ports.live``) carries these from the hub, the console's
MQTT client and the change watcher to the pages. Each kind is its own class so
a view matches on the type (``isinstance`` or ``match``) and reads typed
attributes; mypy then checks producers and consumers against the same fields,
which a kind string with a free-form dict could not.

Device-scoped events expose ``device_id``; the bridge's coalescing keys rely on
it (and on ``alert.alert_id``, ``record.request_id`` and ``topic``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from core.model.alert import Alert
from core.model.device import Device
from core.model.link import CommandRecord, QuarantinedMessage
from core.model.reading import Reading

if TYPE_CHECKING:  # a port's value type; the model never needs it at run time
    from core.ports.shadows import ShadowDocument


@dataclass(frozen=True, slots=True)
class TelemetryReceived:
    """Readings of one telemetry message (several, once the bridge merged a window)."""

    device_id: str
    readings: tuple[Reading, ...]
    seq: int | None = None
    firmware: str = ""


@dataclass(frozen=True, slots=True)
class TableSamples:
    """What the devices table shows of many messages at once, as columns in
    arrival order: the device, the message's time (epoch ms), its battery and
    RSSI (``None`` when it carried none) and the firmware it reported ("" when
    it said none). A feed serving thousands of devices sends one per batch for
    the devices no view shows in full (``LiveFeed.focus``) instead of an event
    with readings per message: at 10,000 devices x 1 Hz those events and their
    readings were most of the objects the console's garbage collector scanned
    on the GUI thread. Tuples of strings and numbers are not even tracked."""

    device_ids: tuple[str, ...]
    ts_ms: tuple[int, ...]
    battery: tuple[float | None, ...]
    rssi: tuple[float | None, ...]
    firmware: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.device_ids)


@dataclass(frozen=True, slots=True)
class DeviceChanged:
    """A device was registered, or its status or metadata changed; carries the whole Device."""

    device: Device

    @property
    def device_id(self) -> str:
        return self.device.device_id


@dataclass(frozen=True, slots=True)
class AlertChanged:
    """An alert was raised, reopened, acknowledged, resolved, synced or is reminded of.

    ``change`` says which (the engine's ``ChangeKind`` values, ``"synced"`` from
    a team console's store poll, ``"reminder"``); ``notify`` is False where a
    person must not be interrupted (snoozed alerts, alerts merely synced);
    ``reminder`` counts reminders of a still-active alert.
    """

    alert: Alert
    change: str = ""
    notify: bool = True
    reminder: int = 0

    @property
    def device_id(self) -> str:
        return self.alert.device_id


@dataclass(frozen=True, slots=True)
class ShadowChanged:
    """A device's shadow document after an accepted update or delete."""

    document: ShadowDocument

    @property
    def device_id(self) -> str:
        return self.document.device_id


@dataclass(frozen=True, slots=True)
class CommandChanged:
    """A command was sent, answered or timed out; carries the whole CommandRecord."""

    record: CommandRecord

    @property
    def device_id(self) -> str:
        return self.record.device_id


@dataclass(frozen=True, slots=True)
class MessageRejected:
    """A message was quarantined; each one is evidence, so they are never merged."""

    message: QuarantinedMessage

    @property
    def device_id(self) -> str:
        return self.message.device_id or ""


@dataclass(frozen=True, slots=True)
class HubStatus:
    """The hub's health, once a second: link state, rates, why it is degraded ("" when well).

    ``hub`` is "" from a hub in this process; a console whose hub runs elsewhere
    learns it from the hub's heartbeat (plugins.local.hub.heartbeat): "online",
    "offline" (its Last Will or a stop), "silent" (no heartbeat for three
    intervals) or "unknown" (none yet); ``hub_detail`` says since when and why.
    ``connection`` is then this console's own link to the broker."""

    connection: str
    messages_per_s: float = 0.0
    readings_per_s: float = 0.0
    degraded: str = ""
    shed_overload: int = 0     # messages dropped because the inbox was full (QoS 0)
    inbox: int = 0
    hub: str = ""
    hub_detail: str = ""
    shed_quarantine: int = 0   # quarantine rows dropped while the database was away
    shed_receiver: int = 0     # QoS 0 the hub's receiver process dropped (its buffer full)


@dataclass(frozen=True, slots=True)
class DataChanged:
    """Data of ``topic`` (``core.ports.changes``: alerts, rules, firmware, deployments,
    devices) changed in the store, by anyone; pages showing it reload."""

    topic: str


FleetEvent: TypeAlias = (TelemetryReceived | TableSamples | DeviceChanged | AlertChanged
                         | ShadowChanged | CommandChanged | MessageRejected | HubStatus
                         | DataChanged)
"""Any live event; match on the concrete type."""

EVENT_TYPES: tuple[type[FleetEvent], ...] = (
    TelemetryReceived, TableSamples, DeviceChanged, AlertChanged, ShadowChanged,
    CommandChanged, MessageRejected, HubStatus, DataChanged)

__all__ = [
    "EVENT_TYPES",
    "AlertChanged",
    "CommandChanged",
    "DataChanged",
    "DeviceChanged",
    "FleetEvent",
    "HubStatus",
    "MessageRejected",
    "ShadowChanged",
    "TableSamples",
    "TelemetryReceived",
]
