"""The devices use cases as a front end sees them (see core.ports.fleet_api).

Arguments and answers are plain domain values, so the in-process session and
an HTTP client of the REST API can both stand behind this Protocol. A device
outside the person's organization is answered NotFound, never Forbidden.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from core.model import Alert, CommandRecord, Device, LinkStats, Reading, Severity
from core.ports.commands import CommandResult
from core.ports.registry import DeviceQuery
from core.ports.shadows import ShadowDocument
from core.ports.telemetry import Series

if TYPE_CHECKING:
    from core.services.fleet_view import Page

SPARKLINE_WINDOW = timedelta(minutes=15)  # the recent readings DeviceDetails.series holds


@dataclass(frozen=True, slots=True)
class DeviceCapabilities:
    """What this backend can do with devices, so a page greys out (and says
    why) what would only fail: commands and shadows need a live hub."""

    backend: str
    commands: bool
    shadows: bool
    link_stats: bool


@dataclass
class FleetOverview:
    """The Devices table in three whole-fleet reads: the devices, their latest
    battery and RSSI, open alerts per device and each one's worst open severity."""

    devices: list[Device]
    latest_values: dict[str, dict[str, float]]
    alert_counts: dict[str, int]
    worst: dict[str, Severity] = field(default_factory=dict)


@dataclass
class FleetOverviewPage:
    """One page of the Devices table (devices in id order with their latest
    values and open alerts), so a large fleet shows its first rows at once
    and fills the rest as pages arrive. ``next`` is empty on the last page;
    ``total`` (the first page only, when known) sizes the progress shown."""

    overview: FleetOverview
    next: str = ""
    total: int | None = None


@dataclass
class OpenAlertSummary:
    """Open-alert count and worst open severity (the health) of some devices."""

    counts: dict[str, int]
    worst: dict[str, Severity | None]


@dataclass
class DeviceDetails:
    """Everything the detail panel shows; ``errors`` names a part that could
    not be read (part -> message) instead of failing the whole panel."""

    device: Device
    latest: dict[str, Reading] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    link: LinkStats | None = None
    commands: list[CommandRecord] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


class DevicesApi(Protocol):
    def capabilities(self) -> DeviceCapabilities: ...

    # -- reads (every role, limited to the person's organization)
    def list(self, query: DeviceQuery | None = None, *, limit: int | None = None,
             next_token: str = "") -> Page[Device]:
        """One page of devices; pass the page's ``next`` back for the following one."""

    def all(self, query: DeviceQuery | None = None) -> builtins.list[Device]:
        """Every matching device at once (the console's table, ``devices list``)."""

    def get(self, device_id: str) -> Device: ...

    def get_many(self, device_ids: builtins.list[str]) -> builtins.list[Device]:
        """The named devices' records, in the order asked; unknown ones and
        another organization's are left out."""

    def overview(self) -> FleetOverview: ...

    def overview_page(self, *, limit: int | None = None,
                      next_token: str = "") -> FleetOverviewPage:
        """overview() a page at a time (an implementation in this process may
        answer it all in one page)."""

    def open_alerts(self, device_ids: builtins.list[str]) -> OpenAlertSummary: ...

    def details(self, device_id: str) -> DeviceDetails: ...

    def link(self, device_id: str) -> LinkStats | None: ...

    def history(self, device_id: str, metric: str = "", *, start: datetime | None = None,
                end: datetime | None = None, bucket_s: float | None = None
                ) -> dict[str, Series]: ...

    def shadow(self, device_id: str) -> ShadowDocument: ...

    # -- changes (role-checked and audited, refusals included)
    def register(self, device: Device) -> Device: ...

    def update(self, device: Device, *, expected_version: int | None = None) -> Device:
        """Save name, tags, location and metadata; ``expected_version`` defaults
        to the version ``device`` was read at (0: unchecked)."""

    def decommission(self, device_id: str, *, expected_version: int | None = None) -> Device: ...

    def delete(self, device_id: str, *, expected_version: int | None = None) -> None: ...

    def command(self, device_id: str, command: str, params: dict[str, Any] | None = None, *,
                timeout_s: float = 10.0) -> CommandResult:
        """Send and wait for the device's answer (or the timeout outcome)."""

    def update_desired(self, device_id: str, desired: dict[str, Any], *,
                       expected_version: int | None = None) -> ShadowDocument: ...
