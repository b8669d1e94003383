"""What people do with devices: list and read them (history, shadow, the
detail panel), register, edit, decommission, delete, send commands and change
the desired state.

Every method takes the Actor. Changes check the role before touching
anything and write the audit entry once stored (a refusal is audited as
well). Everything is limited to the actor's organization: a device of
another organization is answered as unknown (NotFound), so its id cannot be
probed; an actor without an organization (the single-user local console)
sees all. The Devices page, ``smartiot devices`` and the REST routes all come
through here, so a support login cannot reboot a device from one front end
that another would refuse.
"""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.errors import NotFound, ValidationError
from core.model import AlertState, Device, DeviceStatus, LinkStats, validate_device_id
from core.model.roles import Actor, Permission
from core.model.timeutil import utcnow
from core.ports.alerts import AlertQuery, AlertStore
from core.ports.commands import CommandChannel, CommandResult
from core.ports.fleet_api.devices import (
    SPARKLINE_WINDOW,
    DeviceCapabilities,
    DeviceDetails,
    FleetOverview,
    FleetOverviewPage,
    OpenAlertSummary,
)
from core.ports.hub import AuditTrail, CommandLog, LinkStatsStore
from core.ports.registry import DeviceQuery, DeviceRegistry
from core.ports.shadows import ShadowDocument, ShadowService
from core.ports.telemetry import Series, TelemetryStore
from core.services.access import authorize, record_action
from core.services.fleet_health import worst_open_severity
from core.services.fleet_view import (
    Page,
    _bucket_ms,
    _check_span,
    _limit,
    decode_cursor,
    encode_token,
)

if TYPE_CHECKING:
    from core.ports.backend import Backend
    from core.services.wiring import Services

TABLE_METRICS = ("battery_pct", "rssi")
OPEN_STATES = frozenset({AlertState.ACTIVE, AlertState.ACKNOWLEDGED})
EDITABLE = ("name", "tags", "location", "metadata")


class DeviceService:
    def __init__(self, registry: DeviceRegistry, audit: AuditTrail | None = None, *,
                 commands: CommandChannel | None = None,
                 shadows: ShadowService | None = None,
                 alerts: AlertStore | None = None,
                 telemetry: TelemetryStore | None = None,
                 link_stats: LinkStatsStore | None = None,
                 command_log: CommandLog | None = None,
                 backend_name: str = "") -> None:
        self._registry = registry
        self._audit = audit
        self._commands = commands
        self._shadows = shadows
        self._alerts = alerts
        self._telemetry = telemetry
        self._link_stats = link_stats
        self._command_log = command_log
        self._backend_name = backend_name

    @classmethod
    def over(cls, backend: Backend) -> DeviceService:
        return cls(backend.registry, backend.audit, commands=backend.commands,
                   shadows=backend.shadows, alerts=backend.alerts, telemetry=backend.telemetry,
                   link_stats=backend.link_stats, command_log=backend.command_log,
                   backend_name=backend.name)

    def capabilities(self) -> DeviceCapabilities:
        return DeviceCapabilities(self._backend_name, self._commands is not None,
                                  self._shadows is not None, self._link_stats is not None)

    # ------------------------------------------------------------------ scope
    def get(self, device_id: str, actor: Actor) -> Device:
        """The device, or NotFound when it is unknown or outside the actor's organization."""
        device = self._registry.find(device_id)
        if device is None or (actor.organization and device.organization != actor.organization):
            raise NotFound(f"device {device_id} is not registered")
        return device

    @staticmethod
    def _scoped(actor: Actor, query: DeviceQuery | None) -> DeviceQuery:
        query = query or DeviceQuery()
        if actor.organization:
            query = replace(query, organizations=frozenset({actor.organization}))
        return query

    def _visible(self, actor: Actor, device_ids: Iterable[str]) -> set[str]:
        ids = set(device_ids)
        if not actor.organization:
            return ids
        return {d.device_id for d in self._registry.list(self._scoped(actor, None))} & ids

    # ------------------------------------------------------------------ reads
    def list(self, actor: Actor, query: DeviceQuery | None = None, *,
             limit: int | None = None, next_token: str = "") -> Page[Device]:
        size = _limit(limit)
        offset, after = decode_cursor(next_token)
        # A page continues after the last id read (keyset), so the store reads
        # one page whatever the depth; a token from before (offset only) still works.
        rows = self._registry.list(replace(self._scoped(actor, query), limit=size + 1,
                                           offset=0 if after else offset, after=after))
        items = rows[:size]
        more = len(rows) > size
        return Page(items, encode_token(offset + size, items[-1].device_id) if more else "")

    def all(self, actor: Actor, query: DeviceQuery | None = None) -> builtins.list[Device]:
        return self._registry.list(self._scoped(actor, query))

    def overview(self, actor: Actor) -> FleetOverview:
        devices = self.all(actor)
        ids = {d.device_id for d in devices}
        open_alerts = [a for a in self._alert_store().list(AlertQuery(states=OPEN_STATES))
                       if a.device_id in ids]
        latest = self._telemetry_store().latest_values(list(TABLE_METRICS))
        return FleetOverview(devices, {k: v for k, v in latest.items() if k in ids},
                             dict(Counter(a.device_id for a in open_alerts)),
                             worst_open_severity(open_alerts))

    def overview_page(self, actor: Actor, *, limit: int | None = None,
                      next_token: str = "") -> FleetOverviewPage:
        """overview() one page of devices at a time (the REST API's, so no
        answer holds the whole fleet): the page's latest values are read for
        its devices only. The first page says how many devices there are."""
        page = self.list(actor, None, limit=limit, next_token=next_token)
        ids = [d.device_id for d in page.items]
        latest = self._telemetry_store().latest_values_of(list(TABLE_METRICS), ids) \
            if ids else {}
        # the page's ids are visible already: no re-read of the registry to check
        wanted = set(ids)
        mine = [a for a in self._alert_store().list(AlertQuery(
            states=OPEN_STATES, organization=actor.organization, device_ids=frozenset(ids)))
            if a.device_id in wanted] if ids else []
        total = None if next_token else self._registry.count(self._scoped(actor, None))
        return FleetOverviewPage(
            FleetOverview(page.items, latest, dict(Counter(a.device_id for a in mine)),
                          worst_open_severity(mine)),
            page.next, total)

    def get_many(self, actor: Actor, device_ids: Iterable[str]) -> builtins.list[Device]:
        """The records of the named devices the actor may see, in the order
        asked; unknown ones and another organization's are left out. What a
        console following a hub through the API needs when a thousand devices
        come online at once: one request, not a thousand."""
        ids = builtins.list(dict.fromkeys(device_ids))
        found = self._registry.find_many(ids)
        org = actor.organization
        return [d for i in ids if (d := found.get(i)) is not None
                and (not org or d.organization == org)]

    def open_alerts(self, actor: Actor, device_ids: Iterable[str]) -> OpenAlertSummary:
        """One query for any number of devices (after live alert events)."""
        ids = self._visible(actor, device_ids)
        mine = [a for a in self._alert_store().list(AlertQuery(states=OPEN_STATES))
                if a.device_id in ids]
        counts = Counter(a.device_id for a in mine)
        worst = worst_open_severity(mine)
        return OpenAlertSummary({d: counts.get(d, 0) for d in ids},
                                {d: worst.get(d) for d in ids})

    def details(self, device_id: str, actor: Actor) -> DeviceDetails:
        """Everything the detail panel shows; a failing part is reported, not fatal."""
        details = DeviceDetails(self.get(device_id, actor))
        now = utcnow()
        try:
            telemetry = self._telemetry_store()
            details.latest = telemetry.latest(device_id)
            for metric in sorted(details.latest):
                details.series[metric] = telemetry.query(
                    device_id, metric, now - SPARKLINE_WINDOW, now + timedelta(seconds=1))
        except Exception as exc:  # noqa: BLE001 - shown next to the values
            details.errors["telemetry"] = str(exc)
        try:
            details.alerts = self._alert_store().list(AlertQuery(device_id=device_id, limit=200))
        except Exception as exc:  # noqa: BLE001
            details.errors["alerts"] = str(exc)
        if self._link_stats is not None:
            try:
                details.link = self._link_stats.get(device_id)
            except Exception as exc:  # noqa: BLE001
                details.errors["link"] = str(exc)
        if self._command_log is not None:
            try:
                details.commands = self._command_log.list_for(device_id, limit=50)
            except Exception as exc:  # noqa: BLE001
                details.errors["commands"] = str(exc)
        return details

    def link(self, device_id: str, actor: Actor) -> LinkStats | None:
        self.get(device_id, actor)
        return None if self._link_stats is None else self._link_stats.get(device_id)

    def history(self, device_id: str, actor: Actor, metric: str = "", *,
                start: datetime | None = None, end: datetime | None = None,
                bucket_s: float | None = None) -> dict[str, Series]:
        """Readings of one device in [start, end) (default: the last hour), one
        series per metric (every metric it reports when none is named)."""
        self.get(device_id, actor)
        telemetry = self._telemetry_store()
        end = end or utcnow()
        start = start or end - timedelta(hours=1)
        _check_span(start, end)
        metrics = [metric] if metric else telemetry.metrics_for(device_id)
        bucket_ms = _bucket_ms(bucket_s)
        return {m: telemetry.query(device_id, m, start, end, bucket_ms=bucket_ms)
                for m in metrics}

    def shadow(self, device_id: str, actor: Actor) -> ShadowDocument:
        self.get(device_id, actor)
        if self._shadows is None:
            raise NotFound("this backend offers no device shadows")
        return self._shadows.get(device_id)

    # ------------------------------------------------------------------ changes
    def register(self, device: Device, actor: Actor) -> Device:
        """Register a new device, or re-register a decommissioned one on purpose.
        A person in an organization registers into it, whatever the device says."""
        authorize(self._audit, actor, Permission.DEVICE_REGISTER, "device.register",
                  device.device_id)
        validate_device_id(device.device_id)
        if actor.organization:
            device = replace(device, organization=actor.organization)
        existing = self._registry.find(device.device_id)
        if existing is not None and existing.status is not DeviceStatus.DECOMMISSIONED:
            raise ValidationError(
                f"device_id: {device.device_id} is already registered ({existing.status.value})")
        if existing is not None and actor.organization \
                and existing.organization != actor.organization:
            raise ValidationError(f"device_id: {device.device_id} is taken")
        if existing is not None:
            device = replace(device, created_at=existing.created_at)
        self._registry.upsert(device)
        stored = self._registry.get(device.device_id)
        record_action(self._audit, actor, "device.register", stored.device_id, {
            "device_type": stored.device_type, "device_organization": stored.organization,
            "re_registered": existing is not None, "version": stored.version})
        return stored

    def update(self, device: Device, actor: Actor, *,
               expected_version: int | None = None) -> Device:
        """Save what a person edited (name, tags, location, metadata) onto the
        stored record, so the hub's newer status and last-seen are kept.
        ``expected_version`` defaults to the version ``device`` was read at."""
        authorize(self._audit, actor, Permission.DEVICE_UPDATE, "device.update",
                  device.device_id)
        before = self.get(device.device_id, actor)
        edited = replace(before, **{f: getattr(device, f) for f in EDITABLE},
                         updated_at=utcnow())
        expected = expected_version if expected_version is not None else device.version or None
        stored = self._registry.save(edited, expected_version=expected)
        record_action(self._audit, actor, "device.update", stored.device_id,
                      {"changed": _changed(before, stored), "version": stored.version})
        return stored

    def decommission(self, device_id: str, actor: Actor, *,
                     expected_version: int | None = None) -> Device:
        authorize(self._audit, actor, Permission.DEVICE_DECOMMISSION, "device.decommission",
                  device_id)
        device = self.get(device_id, actor).with_status(DeviceStatus.DECOMMISSIONED)
        stored = self._registry.save(device, expected_version=expected_version)
        record_action(self._audit, actor, "device.decommission", device_id,
                      {"version": stored.version})
        return stored

    def delete(self, device_id: str, actor: Actor, *,
               expected_version: int | None = None) -> None:
        """Remove the record for good (decommissioning keeps it)."""
        authorize(self._audit, actor, Permission.DEVICE_DELETE, "device.delete", device_id)
        self.get(device_id, actor)
        self._registry.delete(device_id, expected_version=expected_version)
        record_action(self._audit, actor, "device.delete", device_id)

    def send_command(self, device_id: str, command: str, actor: Actor,
                     params: dict[str, Any] | None = None, *,
                     timeout_s: float = 10.0) -> Future[CommandResult]:
        """Audited when sent: the device's answer arrives later and is kept in
        the command log, the decision to send it belongs in the audit trail."""
        authorize(self._audit, actor, Permission.DEVICE_COMMAND, "device.command", device_id,
                  {"command": command})
        self.get(device_id, actor)
        if self._commands is None:
            raise NotFound("this backend cannot send commands to devices")
        record_action(self._audit, actor, "device.command", device_id,
                      {"command": command, "params": params or {}})
        return self._commands.send(device_id, command, params, timeout_s=timeout_s)

    def command(self, device_id: str, command: str, actor: Actor,
                params: dict[str, Any] | None = None, *,
                timeout_s: float = 10.0) -> CommandResult:
        """:meth:`send_command` and wait for the answer; a device that never
        answers ends in the channel's timeout outcome, never a hang."""
        future = self.send_command(device_id, command, actor, params, timeout_s=timeout_s)
        return future.result(timeout=timeout_s + 10)

    def update_desired(self, device_id: str, desired: dict[str, Any], actor: Actor, *,
                       expected_version: int | None = None) -> ShadowDocument:
        authorize(self._audit, actor, Permission.DESIRED_STATE, "device.desired", device_id)
        self.get(device_id, actor)
        if self._shadows is None:
            raise NotFound("this backend offers no device shadows")
        document = self._shadows.update_desired(device_id, desired,
                                                expected_version=expected_version)
        record_action(self._audit, actor, "device.desired", device_id,
                      {"desired": desired, "version": document.version})
        return document

    # ------------------------------------------------------------------ ports
    def _alert_store(self) -> AlertStore:
        if self._alerts is None:
            raise NotFound("this backend keeps no alerts")
        return self._alerts

    def _telemetry_store(self) -> TelemetryStore:
        if self._telemetry is None:
            raise NotFound("this backend keeps no telemetry")
        return self._telemetry


class DevicesSession:
    """The devices use cases for one person (core.ports.fleet_api.DevicesApi)."""

    def __init__(self, services: Services, actor: Actor) -> None:
        self._service = services.devices
        self._actor = actor

    def capabilities(self) -> DeviceCapabilities:
        return self._service.capabilities()

    def list(self, query: DeviceQuery | None = None, *, limit: int | None = None,
             next_token: str = "") -> Page[Device]:
        return self._service.list(self._actor, query, limit=limit, next_token=next_token)

    def all(self, query: DeviceQuery | None = None) -> builtins.list[Device]:
        return self._service.all(self._actor, query)

    def get(self, device_id: str) -> Device:
        return self._service.get(device_id, self._actor)

    def overview(self) -> FleetOverview:
        return self._service.overview(self._actor)

    def overview_page(self, *, limit: int | None = None,
                      next_token: str = "") -> FleetOverviewPage:
        """In this process the whole table is one read (no answer crosses a
        network), cheaper than pages that each look up the open alerts."""
        return FleetOverviewPage(self._service.overview(self._actor))

    def get_many(self, device_ids: builtins.list[str]) -> builtins.list[Device]:
        return self._service.get_many(self._actor, device_ids)

    def open_alerts(self, device_ids: builtins.list[str]) -> OpenAlertSummary:
        return self._service.open_alerts(self._actor, device_ids)

    def details(self, device_id: str) -> DeviceDetails:
        return self._service.details(device_id, self._actor)

    def link(self, device_id: str) -> LinkStats | None:
        return self._service.link(device_id, self._actor)

    def history(self, device_id: str, metric: str = "", *, start: datetime | None = None,
                end: datetime | None = None, bucket_s: float | None = None
                ) -> dict[str, Series]:
        return self._service.history(device_id, self._actor, metric, start=start, end=end,
                                     bucket_s=bucket_s)

    def shadow(self, device_id: str) -> ShadowDocument:
        return self._service.shadow(device_id, self._actor)

    def register(self, device: Device) -> Device:
        return self._service.register(device, self._actor)

    def update(self, device: Device, *, expected_version: int | None = None) -> Device:
        return self._service.update(device, self._actor, expected_version=expected_version)

    def decommission(self, device_id: str, *, expected_version: int | None = None) -> Device:
        return self._service.decommission(device_id, self._actor,
                                          expected_version=expected_version)

    def delete(self, device_id: str, *, expected_version: int | None = None) -> None:
        self._service.delete(device_id, self._actor, expected_version=expected_version)

    def command(self, device_id: str, command: str, params: dict[str, Any] | None = None, *,
                timeout_s: float = 10.0) -> CommandResult:
        return self._service.command(device_id, command, self._actor, params,
                                     timeout_s=timeout_s)

    def update_desired(self, device_id: str, desired: dict[str, Any], *,
                       expected_version: int | None = None) -> ShadowDocument:
        return self._service.update_desired(device_id, desired, self._actor,
                                            expected_version=expected_version)


def _changed(before: Device, after: Device) -> list[str]:
    fields = ("name", "device_type", "organization", "tags", "location", "metadata",
              "firmware_version", "status")
    return [f for f in fields if getattr(before, f) != getattr(after, f)]
