"""Device health and "needs attention": one definition each, used by every view.

**Health** of a device (the devices list and detail, the dashboard cards, the
map, the status bar) comes from its link and its open alerts:

============== ==========================================================
decommissioned retired; not part of the fleet
offline        the link is down (the hub marked it offline), whatever its
               alerts: nobody can act on a device that cannot be reached
critical       online with an open (active or acknowledged) critical alert
warning        online with an open warning alert (and no critical one)
ok             online with no open warning or critical alert
============== ==========================================================

Open alerts count whether acknowledged or snoozed: acknowledging means
someone is on it, snoozing silences the reminders, and neither fixes the
device. Info alerts do not change health.

**Needs attention** (the alerts page header, the navigation badge and the
status bar's alert count) is an alert that is *active* — not yet
acknowledged — and *not snoozed*: the queue a support person still has to
pick up. Acknowledged and snoozed alerts are open, and listed, but nobody
has to be told about them again.

The registry keeps only the link status (``online``/``offline``, written by
the hub); health is computed when a view asks, so the two never disagree
about what the hub saw.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from core.model import Alert, AlertState, Device, DeviceStatus, Severity
from core.model.timeutil import utcnow
from core.ports.alerts import AlertQuery, AlertStore
from core.ports.registry import DeviceRegistry

OPEN_STATES = frozenset({AlertState.ACTIVE, AlertState.ACKNOWLEDGED})


class Health(enum.StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    OFFLINE = "offline"
    DECOMMISSIONED = "decommissioned"

    @property
    def status(self) -> DeviceStatus:
        """The Smart_IOT dashboard's device status for this health."""
        return _AS_STATUS[self]


_AS_STATUS = {Health.OK: DeviceStatus.ONLINE, Health.WARNING: DeviceStatus.WARNING,
              Health.CRITICAL: DeviceStatus.ERROR, Health.OFFLINE: DeviceStatus.OFFLINE,
              Health.DECOMMISSIONED: DeviceStatus.DECOMMISSIONED}


# What a person reads for each status a view shows (the dashboard's "error" is
# a device with a critical alert).
STATUS_LABELS = {DeviceStatus.ONLINE: "online", DeviceStatus.WARNING: "warning",
                 DeviceStatus.ERROR: "critical", DeviceStatus.OFFLINE: "offline",
                 DeviceStatus.DECOMMISSIONED: "decommissioned"}


def status_label(status: DeviceStatus) -> str:
    return STATUS_LABELS[status]


def worst_from_status(status: DeviceStatus) -> Severity | None:
    """The open-alert severity a health-derived status stands for."""
    return {DeviceStatus.WARNING: Severity.WARNING,
            DeviceStatus.ERROR: Severity.CRITICAL}.get(status)


def needs_attention(alert: Alert, now: datetime | None = None) -> bool:
    """Active (unacknowledged) and not snoozed: see the module doc."""
    return alert.state is AlertState.ACTIVE and not alert.is_snoozed(now)


def attention_counts(alerts: Iterable[Alert], now: datetime | None = None
                     ) -> dict[Severity, int]:
    now = now or utcnow()
    counts = Counter(a.severity for a in alerts if needs_attention(a, now))
    return {s: counts.get(s, 0) for s in (Severity.CRITICAL, Severity.WARNING, Severity.INFO)}


def load_attention_counts(alerts: AlertStore, now: datetime | None = None
                          ) -> dict[Severity, int]:
    return attention_counts(alerts.list(AlertQuery(states=frozenset({AlertState.ACTIVE}))), now)


def worst_open_severity(alerts: Iterable[Alert]) -> dict[str, Severity]:
    """Per device, the most severe of its open alerts."""
    worst: dict[str, Severity] = {}
    for alert in alerts:
        if alert.state not in OPEN_STATES:
            continue
        current = worst.get(alert.device_id)
        if current is None or alert.severity.rank > current.rank:
            worst[alert.device_id] = alert.severity
    return worst


def device_health(device: Device, worst: Severity | None) -> Health:
    """``worst``: the most severe open alert of the device (None: none open)."""
    return status_health(device.status, worst)


def status_health(status: DeviceStatus, worst: Severity | None) -> Health:
    """A device's health from its status alone: all ``device_health`` reads."""
    if status is DeviceStatus.DECOMMISSIONED:
        return Health.DECOMMISSIONED
    if status is DeviceStatus.OFFLINE:
        return Health.OFFLINE
    # The link is up. A backend that reports warning/error itself (the Smart_IOT
    # statuses) is heard too; the worse of the two wins. Views keep the
    # registry's device and compute this on display, so a status derived here
    # never comes back in as a reported one.
    if worst is Severity.CRITICAL or status is DeviceStatus.ERROR:
        return Health.CRITICAL
    if worst is Severity.WARNING or status is DeviceStatus.WARNING:
        return Health.WARNING
    return Health.OK


def health_of(device: Device, alerts: Iterable[Alert]) -> Health:
    """One device's health from its alerts (any; only its own open ones count)."""
    mine = [a for a in alerts if a.device_id == device.device_id]
    return device_health(device, worst_open_severity(mine).get(device.device_id))


def with_health(device: Device, health: Health) -> Device:
    """The device as views show it: ``status`` carries the health (online for
    ok, warning, error for critical, offline), so every view that draws a
    status draws the health. Never written back to the registry."""
    status = health.status
    return device if device.status is status else replace(device, status=status)


@dataclass(frozen=True, slots=True)
class FleetHealth:
    """The fleet as every view shows it: devices with health applied."""

    devices: list[Device]
    health: dict[str, Health]
    worst: dict[str, Severity] = field(default_factory=dict)

    def counts(self) -> dict[Health, int]:
        return health_counts(self.health.values())


def health_counts(healths: Iterable[Health]) -> dict[Health, int]:
    """How many of each health, every kind named (0 where none)."""
    counts = Counter(healths)
    return {h: counts.get(h, 0) for h in Health}


def fleet_health(devices: Iterable[Device], open_alerts: Iterable[Alert]) -> FleetHealth:
    worst = worst_open_severity(open_alerts)
    health: dict[str, Health] = {}
    shown: list[Device] = []
    for device in devices:
        h = device_health(device, worst.get(device.device_id))
        health[device.device_id] = h
        shown.append(with_health(device, h))
    return FleetHealth(shown, health, worst)


def load_fleet_health(registry: DeviceRegistry, alerts: AlertStore) -> FleetHealth:
    """Two queries: the registry and the open alerts."""
    return fleet_health(registry.list(), alerts.list(AlertQuery(states=OPEN_STATES)))


def load_health_by_device(registry: DeviceRegistry, alerts: AlertStore) -> dict[str, Health]:
    """Each device's health from the registry's statuses alone, not its records.

    The status bar recounts this every few seconds while devices change; read
    as whole records (``load_fleet_health``), 10,000 devices took ~0.5 s of CPU
    on a background thread, each time holding the GIL against the window."""
    worst = worst_open_severity(alerts.list(AlertQuery(states=OPEN_STATES)))
    return {device_id: status_health(status, worst.get(device_id))
            for device_id, status in registry.statuses().items()}


def apply_health(devices: Iterable[Device], worst: Mapping[str, Severity]) -> list[Device]:
    """Health applied to devices whose worst open severities are known (e.g.
    a live DEVICE event, which carries the hub's link status only)."""
    return [with_health(d, device_health(d, worst.get(d.device_id))) for d in devices]
