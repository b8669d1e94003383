"""REST routes of analytics: the dashboard statistics, sensor queries, and what
the Analytics page draws (the fleet overview, chart histories with threshold
lines and alert marks, the metrics devices report), through the same use cases
(core.services.analytics) the page and ``smartiot export`` call, limited to the
caller's organization; so a console over HTTP draws the same charts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Protocol

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field

from core.errors import ValidationError
from core.model.analytics import (
    AlertMark,
    FleetOverview,
    History,
    HistoryRequest,
    SensorQuery,
    ThresholdLine,
)
from core.model.roles import Actor
from core.services.analytics import AnalyticsService
from plugins.api import models, shapes
from plugins.api.responses import envelope


class HistoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_ids: list[str] = Field(min_length=1, max_length=50)
    metrics: list[str] = Field(min_length=1, max_length=20)
    start: datetime
    end: datetime
    bucket_s: float | None = Field(default=None, ge=1, le=86400,
                                   description="absent: raw readings")
    overlays: bool = Field(default=True, description="threshold lines and alert marks too")


def threshold_json(t: ThresholdLine) -> dict[str, Any]:
    return {"rule_id": t.rule_id, "name": t.name, "metric": t.metric, "limit": t.limit,
            "op": t.op, "severity": t.severity}


def mark_json(m: AlertMark) -> dict[str, Any]:
    return {"device_id": m.device_id, "ts_ms": m.ts_ms, "severity": m.severity,
            "message": m.message}


def history_json(h: History) -> dict[str, Any]:
    return {"series": [shapes.series(s) for s in h.series],
            "bucket_s": None if h.request.bucket_ms is None else h.request.bucket_ms / 1000,
            "thresholds": [threshold_json(t) for t in h.thresholds],
            "marks": [mark_json(m) for m in h.marks]}


def overview_json(o: FleetOverview) -> dict[str, Any]:
    loc = o.locations
    return {
        "stats": {**o.stats.as_dashboard(), "decommissioned": o.stats.decommissioned},
        "since": o.since.isoformat(), "online_ts_ms": o.online_ts_ms.tolist(),
        "online_count": o.online_count.tolist(), "online_note": o.online_note,
        "hour_start_ms": o.hour_start_ms.tolist(),
        "alerts_per_hour": {k: v.tolist() for k, v in o.alerts_per_hour.items()},
        "firmware": [[v, n] for v, n in o.firmware], "top_metric": o.top_metric,
        "top": [[d, v] for d, v in o.top], "metrics": list(o.metrics),
        "locations": None if loc is None else {
            "device_id": list(loc.device_id), "latitude": loc.latitude.tolist(),
            "longitude": loc.longitude.tolist(), "status": list(loc.status)},
    }


def _zoned(value: datetime, name: str) -> None:
    if value.tzinfo is None:
        raise ValidationError(f"{name}: give a time zone (e.g. 2026-12-04T18:00:00Z)")


def _names(text: str, name: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValidationError(f"{name}: name at least one")
    return names


class HasAnalytics(Protocol):
    """What these routes need of the API's services."""

    @property
    def analytics(self) -> AnalyticsService: ...


def analytics_router(services: Callable[[], HasAnalytics],
                     actor: Callable[[], Actor]) -> Router:
    """``actor`` takes the caller from the authorizer's claims (and counts the
    request against its rate)."""
    router = Router()

    @router.get("/analytics/dashboard", summary="Fleet statistics", tags=["analytics"])
    def dashboard() -> Response[Any]:
        return envelope(services().analytics.dashboard(actor()).as_dict())

    @router.post("/analytics/query", summary="Sensor readings of several devices",
                 tags=["analytics"])
    def analytics_query(body: Annotated[models.SensorQueryIn, Body()]) -> Response[Any]:
        _zoned(body.start, "start")
        _zoned(body.end, "end")
        result = services().analytics.sensor_query(actor(), SensorQuery(
            tuple(body.device_ids), body.metric, body.start, body.end, body.bucket_s))
        return envelope({"series": [shapes.series(s) for s in result]})

    @router.get("/analytics/overview", summary="What the fleet dashboard page draws",
                tags=["analytics"])
    def overview(
        top_metric: Annotated[str, Query(max_length=64, description="for the top 10")] = "",
        hours: Annotated[int, Query(ge=1, le=24 * 31)] = 24,
    ) -> Response[Any]:
        return envelope(overview_json(services().analytics.overview(
            actor(), top_metric=top_metric, hours=hours)))

    @router.post("/analytics/history",
                 summary="Several metrics of several devices, with thresholds and alert marks",
                 tags=["analytics"])
    def history(body: Annotated[HistoryIn, Body()]) -> Response[Any]:
        _zoned(body.start, "start")
        _zoned(body.end, "end")
        if body.end <= body.start:
            raise ValidationError("end: must be after start")
        request = HistoryRequest(tuple(body.device_ids), tuple(body.metrics), body.start,
                                 body.end, None if body.bucket_s is None
                                 else int(body.bucket_s * 1000))
        return envelope(history_json(services().analytics.history(
            actor(), request, overlays=body.overlays)))

    @router.get("/analytics/metrics", summary="The metrics these devices report",
                tags=["analytics"])
    def metrics(device_ids: Annotated[str, Query(description="comma-separated")] = ""
                ) -> Response[Any]:
        return envelope({"items": services().analytics.metrics(
            actor(), _names(device_ids, "device_ids"))})

    @router.get("/analytics/thresholds", summary="Enabled threshold rules' limits on metrics",
                tags=["analytics"])
    def thresholds(metrics: Annotated[str, Query(description="comma-separated")] = ""
                   ) -> Response[Any]:
        lines = services().analytics.thresholds(actor(), _names(metrics, "metrics"))
        return envelope({"items": [threshold_json(t) for t in lines]})

    return router
