"""REST routes of analytics: the dashboard statistics and sensor queries,
through the same use cases (core.services.analytics) the Analytics page and
``smartiot export`` call, limited to the caller's organization."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Protocol

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from core.errors import ValidationError
from core.model.analytics import SensorQuery
from core.model.roles import Actor
from core.services.analytics import AnalyticsService
from plugins.api import models, shapes


class HasAnalytics(Protocol):
    """What these routes need of the API's services."""

    @property
    def analytics(self) -> AnalyticsService: ...


def analytics_router(services: Callable[[], HasAnalytics],
                     actor: Callable[[], Actor]) -> Router:
    """``actor`` takes the caller from the authorizer's claims (and counts the
    request against its rate)."""
    from plugins.api.app import envelope  # app includes this router: import when built

    router = Router()

    @router.get("/analytics/dashboard", summary="Fleet statistics", tags=["analytics"])
    def dashboard() -> Response[Any]:
        return envelope(services().analytics.dashboard(actor()).as_dict())

    @router.post("/analytics/query", summary="Sensor readings of several devices",
                 tags=["analytics"])
    def analytics_query(body: Annotated[models.SensorQueryIn, Body()]) -> Response[Any]:
        for name, value in (("start", body.start), ("end", body.end)):
            if value.tzinfo is None:
                raise ValidationError(f"{name}: give a time zone (e.g. 2026-12-04T18:00:00Z)")
        result = services().analytics.sensor_query(actor(), SensorQuery(
            tuple(body.device_ids), body.metric, body.start, body.end, body.bucket_s))
        return envelope({"series": [shapes.series(s) for s in result]})

    return router
