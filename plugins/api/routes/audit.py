"""REST routes of the audit trail: entries (filtered, newest first, paged) and
the chain's verification, through core.services.audit: reading needs
``audit.read`` (engineers and admins), a refusal is itself audited, and a
verification is recorded in the trail like one from ``smartiot audit verify``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Protocol

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from core.errors import ValidationError
from core.model.roles import Actor
from core.ports.audit import AuditFilter, AuditReport
from core.services.audit import AuditService, entry_json
from plugins.api.responses import envelope


class HasAudit(Protocol):
    """What these routes need of the API's services."""

    @property
    def audit(self) -> AuditService: ...


def report_json(report: AuditReport) -> dict[str, Any]:
    return {"ok": report.ok, "entries": report.entries, "head_seq": report.head_seq,
            "head_hash": report.head_hash, "checkpoints": report.checkpoints,
            "first_bad_seq": report.first_bad_seq, "problems": list(report.problems),
            "signatures_checked": report.signatures_checked, "pending": report.pending}


def _since(text: str) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"since: {text!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise ValidationError("since: give a time zone (e.g. 2026-12-04T18:00:00Z)")
    return when


# The filter both the listing and the export take, declared once so the two
# routes (and the OpenAPI document) cannot drift apart.
ActorParam = Annotated[str, Query(alias="actor", description="only this user")]
ActionParam = Annotated[str, Query(description="exact, or a prefix ending in '.'")]
TargetParam = Annotated[str, Query(description="subject contains this")]
SinceParam = Annotated[str, Query(description="ISO 8601 with zone")]
DeniedParam = Annotated[bool, Query(description="refused attempts only")]


def _filter(actor_name: str, action: str, target: str, since: str,
            denied: bool) -> AuditFilter:
    return AuditFilter(actor=actor_name, action=action, subject=target,
                       since=_since(since), outcome="denied" if denied else "")


def audit_router(services: Callable[[], HasAudit], actor: Callable[[], Actor]) -> Router:
    router = Router()

    @router.get("/audit", summary="Audit entries, newest first (paged)", tags=["audit"])
    def list_entries(
        limit: Annotated[int | None, Query(ge=1, le=500)] = None,
        next: Annotated[str, Query(description="token from the previous page")] = "",
        actor_name: ActorParam = "",
        action: ActionParam = "",
        target: TargetParam = "",
        since: SinceParam = "",
        denied: DeniedParam = False,
    ) -> Response[Any]:
        query = _filter(actor_name, action, target, since, denied)
        page = services().audit.page(actor(), query, limit=limit, next_token=next)
        return envelope({"items": [entry_json(e) for e in page.items], "next": page.next})

    @router.get("/audit/export", summary="The entries as CSV or JSON with the head hash",
                tags=["audit"])
    def export_entries(
        format: Annotated[str, Query(description="csv or json")] = "csv",
        actor_name: ActorParam = "",
        action: ActionParam = "",
        target: TargetParam = "",
        since: SinceParam = "",
        denied: DeniedParam = False,
    ) -> Response[Any]:
        query = _filter(actor_name, action, target, since, denied)
        done = services().audit.export(actor(), format, query)
        return envelope({"format": format, "text": done.text, "entries": done.entries,
                         "head_seq": done.head_seq, "head_hash": done.head_hash})

    @router.get("/audit/verify", summary="Check the hash chain and its signed checkpoints",
                tags=["audit"])
    def verify() -> Response[Any]:
        return envelope(report_json(services().audit.verify(actor())))

    return router
