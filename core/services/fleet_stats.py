"""Fleet statistics in the shape the Smart_IOT backend's dashboard returns.

Keeping the exact keys (total, online, offline, warning, error, by_type) lets
the AWS backend pass its dashboard answer through unchanged and lets the
Analytics page draw either one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core.model import Device, DeviceStatus


@dataclass(frozen=True, slots=True)
class FleetStatistics:
    total: int = 0
    online: int = 0
    offline: int = 0
    warning: int = 0
    error: int = 0
    decommissioned: int = 0
    by_type: dict[str, int] = field(default_factory=dict)

    def as_dashboard(self) -> dict[str, Any]:
        """The backend's JSON shape; decommissioned devices are not part of the fleet."""
        return {
            "total": self.total,
            "online": self.online,
            "offline": self.offline,
            "warning": self.warning,
            "error": self.error,
            "by_type": dict(sorted(self.by_type.items())),
        }


def compute_fleet_statistics(devices: Iterable[Device]) -> FleetStatistics:
    """Decommissioned devices are counted apart and excluded from total and by_type,
    matching the dashboard, which only shows the working fleet."""
    status_counts: Counter[DeviceStatus] = Counter()
    by_type: Counter[str] = Counter()
    for device in devices:
        status_counts[device.status] += 1
        if device.status is not DeviceStatus.DECOMMISSIONED:
            by_type[device.device_type] += 1
    return FleetStatistics(
        total=sum(by_type.values()),
        online=status_counts[DeviceStatus.ONLINE],
        offline=status_counts[DeviceStatus.OFFLINE],
        warning=status_counts[DeviceStatus.WARNING],
        error=status_counts[DeviceStatus.ERROR],
        decommissioned=status_counts[DeviceStatus.DECOMMISSIONED],
        by_type=dict(by_type),
    )
