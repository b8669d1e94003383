"""REST routes of the devices: parse the request, call the devices use case
with the caller's Actor, shape the answer.

Role checks, the organization's scope (another organization's device is 404),
audit entries (refusals too) and versioned saves are the use cases'
(core.services.devices): a device's ETag is its stored version, so a PUT,
DELETE or decommission with an older If-Match is answered 409 and changes
nothing, even when two arrive at the same moment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Protocol

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from core.errors import SmartIotError, ValidationError
from core.model import Device, DeviceStatus, Location
from core.model.ids import validate_device_id
from core.model.roles import Actor
from core.ports.registry import DeviceQuery
from core.services.devices import DeviceService
from plugins.api import models, shapes
from plugins.api.responses import envelope


class HasDevices(Protocol):
    """What these routes need of the API's services."""

    @property
    def devices(self) -> DeviceService: ...


MAX_SUMMARY_IDS = 200  # devices per open-alert summary or records (the ids are in the URL)


IdList = Annotated[str, Query(description=f"comma-separated device ids (at most "
                                          f"{MAX_SUMMARY_IDS})")]


def _id_list(ids: str) -> list[str]:
    wanted = [i for i in ids.split(",") if i]
    if len(wanted) > MAX_SUMMARY_IDS:
        raise ValidationError(f"ids: {len(wanted)} devices; ask for at most "
                              f"{MAX_SUMMARY_IDS} at a time")
    for i in wanted:  # a NUL or an over-long id is the caller's error, not the database's
        try:
            validate_device_id(i)
        except ValidationError as exc:
            raise ValidationError(f"ids: {exc}") from None
    return wanted


def etag(d: Device) -> dict[str, str]:
    return {"ETag": f'"{d.version}"'}


def if_match(router: Router, what: str) -> int | None:
    """The version in If-Match (``"3"``, ``W/"3"`` or ``*`` for any)."""
    value = router.current_event.headers.get("If-Match")
    if value is None:
        return None
    wanted = value.strip().removeprefix("W/").strip().strip('"')
    if wanted == "*":
        return None
    try:
        return int(wanted)
    except ValueError:
        raise ValidationError(f"If-Match: {wanted!r} is not a version of {what} (the ETag "
                              "of the last read)") from None


def parse_time(text: str, name: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{name}: {text!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise ValidationError(f"{name}: give a time zone (e.g. 2026-12-04T18:00:00Z)")
    return value


def _location(body: models.LocationIn | None) -> Location | None:
    return None if body is None else Location(body.latitude, body.longitude, body.label)


def devices_router(services: Callable[[], HasDevices], actor: Callable[[], Actor]) -> Router:
    """``actor`` takes the caller from the authorizer's claims (and counts the
    request against its rate)."""
    # app includes this router: import when built
    router = Router()

    def devices() -> DeviceService:
        return services().devices

    @router.get("/devices", summary="List devices (paged)", tags=["devices"])
    def list_devices(
        limit: Annotated[int | None, Query(ge=1, le=500)] = None,
        next: Annotated[str, Query(description="token from the previous page")] = "",
        status: Annotated[str, Query()] = "",
        device_type: Annotated[str, Query()] = "",
        tag: Annotated[str, Query()] = "",
        search: Annotated[str, Query()] = "",
    ) -> Response[Any]:
        try:
            statuses = frozenset(DeviceStatus.parse(s) for s in status.split(",") if s)
        except SmartIotError as exc:
            raise ValidationError(f"status: {exc}") from None
        query = DeviceQuery(text=search, statuses=statuses, tag=tag,
                            device_types=frozenset(t for t in device_type.split(",") if t))
        page = devices().list(actor(), query, limit=limit, next_token=next)
        return envelope({"items": [shapes.device(d) for d in page.items], "next": page.next})

    @router.get("/devices/capabilities",
                summary="What this backend does with devices (commands, shadows, link)",
                tags=["devices"])
    def device_capabilities() -> Response[Any]:
        actor()  # only a signed-in caller learns about the backend
        caps = devices().capabilities()
        return envelope({"backend": caps.backend, "commands": caps.commands,
                         "shadows": caps.shadows, "link_stats": caps.link_stats})

    @router.get("/devices/overview",
                summary="The whole fleet table: devices, latest battery/RSSI, open alerts",
                tags=["devices"])
    def devices_overview(
        limit: Annotated[int | None, Query(ge=1, le=500, description=(
            "devices per page: the answer then carries next (and total on the first "
            "page); without limit or next, the whole fleet in one answer"))] = None,
        next: Annotated[str, Query(description="token from the previous page")] = "",
    ) -> Response[Any]:
        who = actor()
        if limit is None and not next:
            view = devices().overview(who)
            return envelope({"devices": [shapes.device(d) for d in view.devices],
                             "latest_values": view.latest_values,
                             "alert_counts": view.alert_counts,
                             "worst": {k: v.value for k, v in view.worst.items()}})
        page = devices().overview_page(who, limit=limit, next_token=next)
        view = page.overview
        return envelope({"devices": [shapes.device(d) for d in view.devices],
                         "latest_values": view.latest_values,
                         "alert_counts": view.alert_counts,
                         "worst": {k: v.value for k, v in view.worst.items()},
                         "next": page.next, "total": page.total})

    @router.get("/devices/open-alerts",
                summary="Open-alert count and worst open severity of some devices",
                tags=["devices"])
    def devices_open_alerts(
        ids: IdList = "",
    ) -> Response[Any]:
        summary = devices().open_alerts(actor(), _id_list(ids))
        return envelope({"counts": summary.counts,
                         "worst": {k: None if v is None else v.value
                                   for k, v in summary.worst.items()}})

    @router.get("/devices/records",
                summary="The records of some devices, by id (a status burst's look-up)",
                tags=["devices"])
    def devices_records(
        ids: IdList = "",
    ) -> Response[Any]:
        found = devices().get_many(actor(), _id_list(ids))
        return envelope({"items": [shapes.device(d) for d in found]})

    @router.post("/devices", summary="Register a device", tags=["devices"])
    def create_device(body: Annotated[models.DeviceCreate, Body()]) -> Response[Any]:
        who = actor()
        device = Device(body.device_id, name=body.name.strip(),
                        device_type=body.device_type.strip(),
                        organization=body.organization.strip() or "default",
                        status=DeviceStatus.OFFLINE, location=_location(body.location),
                        tags=frozenset(t.strip() for t in body.tags if t.strip()),
                        metadata=body.metadata)
        stored = devices().register(device, who)
        return envelope(shapes.device(stored), 201, etag(stored))

    @router.get("/devices/<device_id>", summary="One device (ETag: its version)",
                tags=["devices"])
    def get_device(device_id: str) -> Response[Any]:
        d = devices().get(device_id, actor())
        return envelope(shapes.device(d), headers=etag(d))

    @router.put("/devices/<device_id>", summary="Edit a device (If-Match: its ETag)",
                tags=["devices"])
    def update_device(device_id: str, body: Annotated[models.DeviceUpdate, Body()]
                      ) -> Response[Any]:
        who = actor()
        service = devices()
        expected = if_match(router, f"device {device_id}")
        current = service.get(device_id, who)
        changes: dict[str, Any] = {}
        if body.name is not None:
            changes["name"] = body.name.strip()
        if body.tags is not None:
            changes["tags"] = frozenset(t.strip() for t in body.tags if t.strip())
        if body.location is not None:
            changes["location"] = _location(body.location)
        if body.metadata is not None:
            changes["metadata"] = body.metadata
        stored = service.update(replace(current, **changes), who, expected_version=expected)
        return envelope(shapes.device(stored), headers=etag(stored))

    @router.delete("/devices/<device_id>", summary="Delete a device for good (If-Match)",
                   tags=["devices"])
    def delete_device(device_id: str) -> Response[Any]:
        devices().delete(device_id, actor(),
                         expected_version=if_match(router, f"device {device_id}"))
        return envelope({"device_id": device_id, "deleted": True})

    @router.post("/devices/<device_id>/decommission", summary="Decommission a device (If-Match)",
                 tags=["devices"])
    def decommission_device(device_id: str) -> Response[Any]:
        stored = devices().decommission(device_id, actor(),
                                        expected_version=if_match(router, f"device {device_id}"))
        return envelope(shapes.device(stored), headers=etag(stored))

    @router.get("/devices/<device_id>/history", summary="A device's readings", tags=["devices"])
    def device_history(
        device_id: str,
        metric: Annotated[str, Query()] = "",
        start: Annotated[str, Query(description="ISO 8601; default an hour ago")] = "",
        end: Annotated[str, Query(description="ISO 8601; default now")] = "",
        bucket_s: Annotated[float | None, Query(ge=1, le=86400)] = None,
    ) -> Response[Any]:
        result = devices().history(device_id, actor(), metric,
                                   start=parse_time(start, "start"), end=parse_time(end, "end"),
                                   bucket_s=bucket_s)
        return envelope({"device_id": device_id,
                         "series": [shapes.series(s) for s in result.values()]})

    @router.post("/devices/<device_id>/commands",
                 summary="Send a command and wait for the answer", tags=["devices"])
    def send_command(device_id: str, body: Annotated[models.CommandIn, Body()]
                     ) -> Response[Any]:
        result = devices().command(device_id, body.command, actor(), body.params,
                                   timeout_s=body.timeout_s)
        return envelope({"device_id": result.device_id, "command": result.command,
                         "request_id": result.request_id, "outcome": result.outcome.value,
                         "latency_ms": result.latency_ms, "result": result.payload})

    @router.get("/devices/<device_id>/shadow", summary="Desired and reported state",
                tags=["devices"])
    def get_shadow(device_id: str) -> Response[Any]:
        doc = devices().shadow(device_id, actor())
        return envelope(shapes.shadow(doc), headers={"ETag": f'"{doc.version}"'})

    @router.put("/devices/<device_id>/shadow",
                summary="Change the desired state (If-Match: version)", tags=["devices"])
    def put_shadow(device_id: str, body: Annotated[models.DesiredIn, Body()]) -> Response[Any]:
        doc = devices().update_desired(device_id, body.desired, actor(),
                                       expected_version=if_match(router,
                                                                 f"the shadow of {device_id}"))
        return envelope(shapes.shadow(doc), headers={"ETag": f'"{doc.version}"'})

    return router
