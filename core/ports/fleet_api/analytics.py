"""The analytics use cases as a front end sees them (see core.ports.fleet_api).

Reads only, limited to the person's organization (core.services.analytics).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from core.model import Device
from core.model.analytics import (
    FleetDashboard,
    FleetOverview,
    History,
    HistoryRequest,
    SensorQuery,
    ThresholdLine,
)
from core.ports.telemetry import Series


class AnalyticsApi(Protocol):
    def devices(self) -> list[Device]:
        """The devices charts can be drawn for, health as their status."""
        ...

    def metrics(self, device_ids: Sequence[str]) -> list[str]:
        """The metrics any of these devices reported, sorted."""
        ...

    def dashboard(self) -> FleetDashboard:
        """Total, online, offline, warning, error, by type and open alerts."""
        ...

    def overview(self, top_metric: str = "", hours: int = 24) -> FleetOverview:
        """Everything the dashboard page draws."""
        ...

    def sensor_query(self, query: SensorQuery) -> list[Series]:
        """One metric of up to 50 devices, optionally in buckets."""
        ...

    def history(self, request: HistoryRequest, overlays: bool = True) -> History:
        """Series of several devices and metrics, with threshold lines and alert marks."""
        ...

    def thresholds(self, metrics: Sequence[str]) -> list[ThresholdLine]:
        """Enabled threshold rules' limits on these metrics."""
        ...
