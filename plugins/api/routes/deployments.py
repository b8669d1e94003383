"""REST routes of OTA deployments: parse the request, call the deployment use
case with the caller's Actor, shape the answer.

Role checks, organization scope (a caller in an organization plans, deploys
to and sees only its own devices), audit entries and the manifest signature
are the use cases' (core.services.ota). The API signs manifests only with a
key in the team's trusted list, as a team's CLI does: a deployment signed
with a key the devices do not trust would be refused by every one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Protocol

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field

from core.model import Execution
from core.model.roles import Actor
from core.ports.fleet_api.deployments import DeploymentProgress, TargetPlan, TargetSpec
from core.services.ota import OtaService
from plugins.api import models, shapes
from plugins.api.responses import envelope


class HasDeployments(Protocol):
    """What these routes need of the API's services."""

    @property
    def deployments(self) -> OtaService: ...


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    firmware_id: str = Field(min_length=1, max_length=200)
    target: models.TargetIn
    only_matching_type: bool = Field(
        default=True, description="leave out devices of another type (they would refuse it)")


def spec_of(target: models.TargetIn) -> TargetSpec:
    return TargetSpec(kind=target.kind, device_ids=tuple(target.device_ids),
                      device_types=tuple(target.device_types), tag=target.tag)


def plan_shape(firmware_id: str, plan: TargetPlan) -> dict[str, Any]:
    return {"firmware_id": firmware_id, "count": plan.count, "targets": list(plan.targets),
            "skipped": [{"reason": reason, "count": len(ids), "device_ids": list(ids)}
                        for reason, ids in plan.skipped.items()]}


def progress_shape(progress: DeploymentProgress) -> dict[str, Any]:
    return {**shapes.deployment(progress.deployment, progress.counts),
            "can_pause": progress.can_pause}


def execution_shape(e: Execution) -> dict[str, Any]:
    return {"deployment_id": e.deployment_id, "device_id": e.device_id,
            "status": e.status.value, "version_number": e.version_number,
            "status_details": e.status_details, "execution_number": e.execution_number,
            "queued_at": e.queued_at.isoformat(),
            "started_at": None if e.started_at is None else e.started_at.isoformat(),
            "updated_at": e.updated_at.isoformat()}


def deployments_router(services: Callable[[], HasDeployments], actor: Callable[[], Actor]
                       ) -> Router:
    """``actor`` takes the caller from the authorizer's claims (and counts the
    request against its rate)."""
    router = Router()

    def ota() -> OtaService:
        return services().deployments

    @router.get("/firmware/deployments", summary="List deployments (paged, newest first)",
                tags=["firmware"])
    def list_deployments(
        limit: Annotated[int | None, Query(ge=1, le=500)] = None,
        next: Annotated[str, Query(description="token from the previous page")] = "",
    ) -> Response[Any]:
        page = ota().page(actor(), limit=limit, next_token=next)
        return envelope({"items": [progress_shape(p) for p in page.items], "next": page.next})

    @router.post("/firmware/deployments/plan",
                 summary="Dry run: which devices a deployment would reach, who is skipped "
                 "and why", tags=["firmware"])
    def plan_deployment(body: Annotated[PlanIn, Body()]) -> Response[Any]:
        plan = ota().plan(actor(), body.firmware_id, spec_of(body.target),
                          only_matching_type=body.only_matching_type)
        return envelope(plan_shape(body.firmware_id, plan))

    @router.post("/firmware/deployments", summary="Create a deployment", tags=["firmware"])
    def create_deployment(body: Annotated[models.DeploymentCreate, Body()]) -> Response[Any]:
        # The role is checked first, inside the use case: a caller without it
        # learns nothing about firmware ids, devices or a bad configuration.
        # A listed id the caller cannot see is an error here, not a device
        # quietly left out: an API client named it on purpose.
        deployment = ota().create(actor(), body.firmware_id, spec_of(body.target), body.config,
                                  description=body.description,
                                  allow_downgrade=body.allow_downgrade,
                                  manifest=body.manifest, refuse_unknown=True)
        return envelope(shapes.deployment(deployment), 201)

    @router.get("/firmware/deployments/<deployment_id>",
                summary="A deployment and its progress", tags=["firmware"])
    def get_deployment(deployment_id: str) -> Response[Any]:
        return envelope(progress_shape(ota().status(actor(), deployment_id)))

    @router.get("/firmware/deployments/<deployment_id>/executions",
                summary="Where each target device of a deployment is", tags=["firmware"])
    def deployment_executions(deployment_id: str) -> Response[Any]:
        found = ota().executions(actor(), deployment_id)
        return envelope({"items": [execution_shape(e) for e in found], "next": ""})

    def _control(deployment_id: str, act: Callable[[OtaService, Actor], object]
                 ) -> Response[Any]:
        who = actor()
        service = ota()
        act(service, who)
        return envelope(progress_shape(service.status(who, deployment_id)))

    @router.post("/firmware/deployments/<deployment_id>/pause", summary="Pause a deployment",
                 tags=["firmware"])
    def pause(deployment_id: str) -> Response[Any]:
        return _control(deployment_id, lambda s, who: s.pause(who, deployment_id))

    @router.post("/firmware/deployments/<deployment_id>/resume",
                 summary="Resume a deployment", tags=["firmware"])
    def resume(deployment_id: str) -> Response[Any]:
        return _control(deployment_id, lambda s, who: s.resume(who, deployment_id))

    @router.post("/firmware/deployments/<deployment_id>/cancel",
                 summary="Cancel a deployment", tags=["firmware"])
    def cancel(deployment_id: str, body: Annotated[models.CancelIn, Body()]) -> Response[Any]:
        return _control(deployment_id,
                        lambda s, who: s.cancel(who, deployment_id, force=body.force))

    @router.post("/firmware/deployments/<deployment_id>/retry",
                 summary="Retry the devices that failed", tags=["firmware"])
    def retry(deployment_id: str) -> Response[Any]:
        return _control(deployment_id, lambda s, who: s.retry_failed(who, deployment_id))

    return router
