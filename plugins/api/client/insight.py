"""AnalyticsApi, UsersApi and AuditApi over the REST API
(core.ports.fleet_api.analytics, .users, .audit)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.errors import NotFound
from core.model import Device
from core.model.analytics import (
    FleetDashboard,
    FleetOverview,
    History,
    HistoryRequest,
    SensorQuery,
    ThresholdLine,
)
from core.model.roles import Role
from core.model.users import UserAccount
from core.ports.audit import AuditEntry, AuditFilter, AuditReport
from core.ports.preferences import Preferences
from core.ports.telemetry import Series
from core.services.fleet_health import OPEN_STATES, fleet_health
from core.services.fleet_view import Page
from plugins.api.client import decode
from plugins.api.client.alerts import HttpAlerts
from plugins.api.client.devices import PAGE, HttpDevices, seg
from plugins.api.client.transport import HttpTransport

if TYPE_CHECKING:
    from core.services.audit import AuditExport


class HttpAnalytics:
    def __init__(self, http: HttpTransport, devices: HttpDevices, alerts: HttpAlerts) -> None:
        self._http = http
        self._devices = devices
        self._alerts = alerts

    def devices(self) -> list[Device]:
        """Health as status, as the local service shows them (fleet_health)."""
        open_alerts = []
        token = ""
        while True:
            page = self._alerts.list_alerts(states=OPEN_STATES, limit=PAGE, next_token=token)
            open_alerts.extend(page.items)
            token = page.next
            if not token:
                break
        return fleet_health(self._devices.all(), open_alerts).devices

    def metrics(self, device_ids: Sequence[str]) -> list[str]:
        if not device_ids:
            return []
        d = self._http.get("/analytics/metrics", {"device_ids": ",".join(device_ids)}).data
        return [str(m) for m in d["items"]]

    def dashboard(self) -> FleetDashboard:
        return decode.dashboard(self._http.get("/analytics/dashboard").data)

    def overview(self, top_metric: str = "", hours: int = 24) -> FleetOverview:
        return decode.overview(self._http.get("/analytics/overview", {
            "top_metric": top_metric, "hours": hours}).data)

    def sensor_query(self, query: SensorQuery) -> list[Series]:
        d = self._http.post("/analytics/query", {
            "device_ids": list(query.device_ids), "metric": query.metric,
            "start": query.start.isoformat(), "end": query.end.isoformat(),
            "bucket_s": query.bucket_s}).data
        return [decode.series(s) for s in d["series"]]

    def history(self, request: HistoryRequest, overlays: bool = True) -> History:
        bucket = request.bucket_ms
        d = self._http.post("/analytics/history", {
            "device_ids": list(request.devices), "metrics": list(request.metrics),
            "start": request.start.isoformat(), "end": request.end.isoformat(),
            "bucket_s": None if bucket is None else bucket / 1000, "overlays": overlays}).data
        return decode.history(request, d)

    def thresholds(self, metrics: Sequence[str]) -> list[ThresholdLine]:
        if not metrics:
            return []
        d = self._http.get("/analytics/thresholds", {"metrics": ",".join(metrics)}).data
        return [decode.threshold(t) for t in d["items"]]


class HttpUsers:
    def __init__(self, http: HttpTransport) -> None:
        self._http = http

    def me(self) -> dict[str, Any]:
        d = dict(self._http.get("/users/me").data)
        d.pop("preferences", None)  # the local answer has no preferences: same keys
        return d

    def preferences(self) -> Preferences:
        return decode.preferences(self._http.get("/users/me/preferences").data)

    def set_preferences(self, values: dict[str, Any],
                        expected_version: int | None = None) -> Preferences:
        headers = {} if expected_version is None else {"If-Match": f'"{expected_version}"'}
        return decode.preferences(self._http.put("/users/me/preferences",
                                                 {"preferences": values}, headers=headers).data)

    def list(self) -> builtins.list[UserAccount]:
        return [decode.user(u) for u in self._http.get("/users").data["items"]]

    def get(self, name: str) -> UserAccount:
        for account in self.list():
            if account.name == name:
                return account
        raise NotFound(f"user {name} is not in the directory")

    def add(self, name: str, role: Role | str, organization: str = "",
            password: str | None = None) -> UserAccount:
        value = role.value if isinstance(role, Role) else Role.parse(role).value
        body: dict[str, Any] = {"name": name, "role": value, "organization": organization}
        if password is not None:
            body["password"] = password
        return decode.user(self._http.post("/users", body).data)

    def set_password(self, name: str, password: str) -> UserAccount:
        return decode.user(self._http.put(f"/users/{seg(name)}/password",
                                          {"password": password}).data)

    def set_role(self, name: str, role: Role | str) -> UserAccount:
        value = role.value if isinstance(role, Role) else Role.parse(role).value
        return decode.user(self._http.put(f"/users/{seg(name)}", {"role": value}).data)

    def set_disabled(self, name: str, disabled: bool) -> UserAccount:
        return decode.user(self._http.put(f"/users/{seg(name)}", {"disabled": disabled}).data)


def audit_query(query: AuditFilter | None) -> dict[str, Any]:
    q = query or AuditFilter()
    return {"actor": q.actor, "action": q.action, "target": q.subject,
            "since": q.since.isoformat() if q.since else None,
            "denied": True if q.outcome == "denied" else None}


class HttpAudit:
    def __init__(self, http: HttpTransport) -> None:
        self._http = http

    def list(self, query: AuditFilter | None = None) -> builtins.list[AuditEntry]:
        """Oldest first unless ``newest_first``, at most ``limit``, as the local trail."""
        wanted = query.limit if query is not None else None
        newest_first = query is not None and query.newest_first
        out: builtins.list[AuditEntry] = []
        token = ""
        # The API pages newest first: the oldest N need every page.
        while not (newest_first and wanted is not None and len(out) >= wanted):
            page = self.page(query, limit=PAGE, next_token=token)
            out.extend(page.items)
            token = page.next
            if not token:
                break
        if not newest_first:
            out.reverse()
        return out if wanted is None else out[:wanted]

    def page(self, query: AuditFilter | None = None, limit: int | None = None,
             next_token: str = "") -> Page[AuditEntry]:
        d = self._http.get("/audit", {**audit_query(query), "limit": limit,
                                      "next": next_token}).data
        return Page([decode.audit_entry(e) for e in d["items"]], d.get("next") or "")

    def verify(self) -> AuditReport:
        return decode.audit_report(self._http.get("/audit/verify").data)

    def export(self, fmt: str, query: AuditFilter | None = None) -> AuditExport:
        from core.services.audit import AuditExport

        d = self._http.get("/audit/export", {**audit_query(query), "format": fmt}).data
        return AuditExport(str(d["text"]), int(d["entries"]), int(d["head_seq"]),
                           str(d["head_hash"]))

