"""Fleet statistics in the shape the Smart_IOT backend's dashboard returns.

Keeping the exact keys (total, online, offline, warning, error, by_type) lets
the AWS backend pass its dashboard answer through unchanged and lets the
Analytics page draw either one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from core.model import Device, DeviceStatus
from core.model.analytics import FleetStatistics

__all__ = ["FleetStatistics", "compute_fleet_statistics"]


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
