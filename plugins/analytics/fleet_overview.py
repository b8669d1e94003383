"""The fleet dashboard's data: computed in core (core.services.analytics), read
by the page through ``context.api.analytics.overview()``.

Names stay importable from here for the page, tests and scripts that drew
the dashboard before the use case moved into core.
"""

from __future__ import annotations

from datetime import datetime

from core.model.analytics import ONLINE_BUCKET_MS, DeviceLocations, FleetOverview
from core.ports.alerts import AlertQuery
from core.ports.backend import Backend
from core.services.analytics import (
    POSITION_METRICS,
    PRESENCE_METRIC,
    TOP_N,
    alerts_per_hour,
    device_locations,
    fleet_overview,
    top_devices,
)
from core.services.fleet_health import OPEN_STATES, fleet_health

DashboardData = FleetOverview

__all__ = ["ONLINE_BUCKET_MS", "POSITION_METRICS", "PRESENCE_METRIC", "TOP_N", "DashboardData",
           "DeviceLocations", "alerts_per_hour", "device_locations", "load_dashboard",
           "top_devices"]


def load_dashboard(backend: Backend, *, top_metric: str = "", hours: int = 24,
                   now: datetime | None = None) -> FleetOverview:
    """The whole fleet's overview straight from a backend's ports (no actor,
    no scope): for the demo's start-up check and scripts run by the data's
    owner. Pages call ``context.api.analytics.overview()``."""
    devices = fleet_health(backend.registry.list(),
                           backend.alerts.list(AlertQuery(states=OPEN_STATES))).devices
    return fleet_overview(devices, backend.alerts, backend.telemetry, backend_name=backend.name,
                          top_metric=top_metric, hours=hours, now=now)
