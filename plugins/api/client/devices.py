"""DevicesApi over the REST API (core.ports.fleet_api.devices)."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from core.model import Device, LinkStats, Reading, Severity
from core.model.timeutil import utcnow
from core.ports.commands import CommandResult
from core.ports.fleet_api.devices import (
    SPARKLINE_WINDOW,
    DeviceCapabilities,
    DeviceDetails,
    FleetOverview,
    FleetOverviewPage,
    OpenAlertSummary,
)
from core.ports.registry import DeviceQuery
from core.ports.shadows import ShadowDocument
from core.ports.telemetry import Series
from core.services.fleet_view import Page
from plugins.api.client import decode
from plugins.api.client.transport import HttpTransport

PAGE = 500  # the API's largest page
SUMMARY_IDS = 100  # device ids per open-alert summary or records request (in the URL)


def merge_overviews(pages: builtins.list[FleetOverview]) -> FleetOverview:
    out = FleetOverview([], {}, {}, {})
    for p in pages:
        out.devices.extend(p.devices)
        out.latest_values.update(p.latest_values)
        out.alert_counts.update(p.alert_counts)
        out.worst.update(p.worst)
    return out


def seg(value: str) -> str:
    """One path segment, escaped (ids are AWS thing names, firmware ids carry '@')."""
    return quote(value, safe="@")


def if_match(version: int | None) -> dict[str, str]:
    return {} if version is None or version <= 0 else {"If-Match": f'"{version}"'}


def query_params(query: DeviceQuery | None) -> dict[str, Any]:
    if query is None:
        return {}
    return {"status": [s.value for s in query.statuses], "device_type": query.device_types,
            "tag": query.tag, "search": query.text}


class HttpDevices:
    def __init__(self, http: HttpTransport) -> None:
        self._http = http

    def capabilities(self) -> DeviceCapabilities:
        d = self._http.get("/devices/capabilities").data
        # Link statistics have no route yet: the page shows them as unavailable.
        return DeviceCapabilities(str(d["backend"]), bool(d["commands"]), bool(d["shadows"]),
                                  False)

    def list(self, query: DeviceQuery | None = None, *, limit: int | None = None,
             next_token: str = "") -> Page[Device]:
        d = self._http.get("/devices", {**query_params(query), "limit": limit,
                                        "next": next_token}).data
        return Page([decode.device(x) for x in d["items"]], d.get("next") or "")

    def all(self, query: DeviceQuery | None = None) -> builtins.list[Device]:
        out: builtins.list[Device] = []
        token = ""
        while True:
            page = self.list(query, limit=PAGE, next_token=token)
            out.extend(page.items)
            if not page.next:
                return out
            token = page.next

    def get(self, device_id: str) -> Device:
        return decode.device(self._http.get(f"/devices/{seg(device_id)}").data)

    def overview(self) -> FleetOverview:
        """The whole table, read a page at a time (no answer holds the fleet)."""
        return merge_overviews([p.overview for p in self.overview_pages()])

    def overview_page(self, *, limit: int | None = None,
                      next_token: str = "") -> FleetOverviewPage:
        d = self._http.get("/devices/overview", {"limit": limit or PAGE,
                                                 "next": next_token}).data
        total = d.get("total")
        return FleetOverviewPage(
            FleetOverview([decode.device(x) for x in d["devices"]],
                          {k: dict(v) for k, v in d["latest_values"].items()},
                          {k: int(v) for k, v in d["alert_counts"].items()},
                          {k: Severity(v) for k, v in d["worst"].items()}),
            d.get("next") or "", None if total is None else int(total))

    def overview_pages(self, *, limit: int | None = None) -> Iterator[FleetOverviewPage]:
        """Every page, lazily: a caller shows each as it arrives."""
        token = ""
        while True:
            page = self.overview_page(limit=limit, next_token=token)
            yield page
            if not page.next:
                return
            token = page.next

    def get_many(self, device_ids: builtins.list[str]) -> builtins.list[Device]:
        """A URL's worth of ids a request, in the order asked."""
        ids = builtins.list(dict.fromkeys(device_ids))
        found: builtins.list[Device] = []
        for i in range(0, len(ids), SUMMARY_IDS):
            d = self._http.get("/devices/records", {"ids": ",".join(ids[i:i + SUMMARY_IDS])}).data
            found.extend(decode.device(item) for item in d["items"])
        return found

    def open_alerts(self, device_ids: builtins.list[str]) -> OpenAlertSummary:
        """Asked for the named devices only, a URL's worth at a time (a live
        alert recounts a few devices, not the fleet)."""
        counts: dict[str, int] = {}
        worst: dict[str, Severity | None] = {}
        ids = builtins.list(dict.fromkeys(device_ids))
        for i in range(0, len(ids), SUMMARY_IDS):
            d = self._http.get("/devices/open-alerts",
                               {"ids": ",".join(ids[i:i + SUMMARY_IDS])}).data
            counts.update({k: int(v) for k, v in d["counts"].items()})
            worst.update({k: None if v is None else Severity(v) for k, v in d["worst"].items()})
        return OpenAlertSummary(counts, worst)

    def details(self, device_id: str) -> DeviceDetails:
        details = DeviceDetails(self.get(device_id))
        now = utcnow()
        try:
            details.series = self.history(device_id, start=now - SPARKLINE_WINDOW,
                                          end=now + timedelta(seconds=1))
            for metric, s in details.series.items():
                if len(s.ts_ms):
                    at = datetime.fromtimestamp(int(s.ts_ms[-1]) / 1000, now.tzinfo)
                    details.latest[metric] = Reading(device_id, metric, at, float(s.value[-1]))
        except Exception as exc:  # noqa: BLE001 - shown next to the values, as locally
            details.errors["telemetry"] = str(exc)
        try:
            d = self._http.get("/alerts", {"device_id": device_id, "limit": 200}).data
            details.alerts = [decode.alert(a) for a in d["items"]]
        except Exception as exc:  # noqa: BLE001
            details.errors["alerts"] = str(exc)
        return details

    def link(self, device_id: str) -> LinkStats | None:
        self.get(device_id)
        return None  # no route yet; capabilities() says link_stats=False

    def history(self, device_id: str, metric: str = "", *, start: datetime | None = None,
                end: datetime | None = None, bucket_s: float | None = None
                ) -> dict[str, Series]:
        d = self._http.get(f"/devices/{seg(device_id)}/history", {
            "metric": metric, "start": start.isoformat() if start else None,
            "end": end.isoformat() if end else None, "bucket_s": bucket_s}).data
        found = [decode.series(s) for s in d["series"]]
        return {s.metric: s for s in found}

    def shadow(self, device_id: str) -> ShadowDocument:
        return decode.shadow(self._http.get(f"/devices/{seg(device_id)}/shadow").data)

    def register(self, device: Device) -> Device:
        body: dict[str, Any] = {"device_id": device.device_id, "device_type": device.device_type,
                                "name": device.name, "organization": device.organization,
                                "tags": sorted(device.tags), "metadata": device.metadata}
        if device.location is not None:
            body["location"] = {"latitude": device.location.latitude,
                                "longitude": device.location.longitude,
                                "label": device.location.label}
        return decode.device(self._http.post("/devices", body).data)

    def update(self, device: Device, *, expected_version: int | None = None) -> Device:
        version = device.version if expected_version is None else expected_version
        body: dict[str, Any] = {"name": device.name, "tags": sorted(device.tags),
                                "metadata": device.metadata}
        if device.location is not None:
            body["location"] = {"latitude": device.location.latitude,
                                "longitude": device.location.longitude,
                                "label": device.location.label}
        return decode.device(self._http.put(f"/devices/{seg(device.device_id)}", body,
                                            headers=if_match(version)).data)

    def decommission(self, device_id: str, *, expected_version: int | None = None) -> Device:
        return decode.device(self._http.post(f"/devices/{seg(device_id)}/decommission",
                                             headers=if_match(expected_version)).data)

    def delete(self, device_id: str, *, expected_version: int | None = None) -> None:
        self._http.delete(f"/devices/{seg(device_id)}", headers=if_match(expected_version))

    def command(self, device_id: str, command: str, params: dict[str, Any] | None = None, *,
                timeout_s: float = 10.0) -> CommandResult:
        # The server waits up to timeout_s for the device's answer: wait longer here.
        d = self._http.post(f"/devices/{seg(device_id)}/commands",
                            {"command": command, "params": params or {},
                             "timeout_s": timeout_s},
                            timeout_s=timeout_s + self._http.timeout_s).data
        return decode.command_result(d)

    def update_desired(self, device_id: str, desired: dict[str, Any], *,
                       expected_version: int | None = None) -> ShadowDocument:
        return decode.shadow(self._http.put(f"/devices/{seg(device_id)}/shadow",
                                            {"desired": desired},
                                            headers=if_match(expected_version)).data)

