"""REST routes of alerts and alert rules: parse the request, call the alerts
use case with the caller's Actor, shape the answer.

Role checks, organization scope, rule validation and audit entries are the
use cases' (core.services.alerting.service), so a refusal here is the one the
console and the CLI give. ``If-Match`` is checked against the version the
caller may see, just before the versioned save.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Annotated, Any, Protocol

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field

from core.errors import ValidationError
from core.model import Alert, AlertState, Severity
from core.model.link import QuarantinedMessage
from core.model.roles import Actor
from core.model.rule import AlertRule, RuleScope
from core.model.timeutil import utcnow
from core.services.alerting.service import AlertService
from plugins.api import models, shapes
from plugins.api.responses import envelope


class RuleImportItem(models.RuleIn):
    rule_id: str = Field(min_length=1, max_length=64,
                         description="a known id is updated, a new one added")


class RuleImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[RuleImportItem] = Field(max_length=1000)


def quarantined_json(m: QuarantinedMessage) -> dict[str, Any]:
    return {"message_id": m.message_id, "topic": m.topic, "reason": m.reason,
            "detail": m.detail, "device_id": m.device_id,
            "received_at": m.received_at.isoformat(),
            "payload_base64": base64.b64encode(m.payload).decode("ascii")}


# A commented state change of one alert (acknowledge, resolve, reopen): the
# three routes differ only in which one they make.
_Transition = Callable[[AlertService, str, Actor, str], Alert]


class HasAlerts(Protocol):
    """What these routes need of the API's services (ApiServices or Services)."""

    @property
    def alerts(self) -> AlertService: ...


def _states(text: str) -> frozenset[AlertState]:
    try:
        return frozenset(AlertState(s) for s in text.split(",") if s)
    except ValueError:
        raise ValidationError(f"state: {text!r} is not a list of "
                              f"{', '.join(s.value for s in AlertState)}") from None


def _severities(text: str) -> frozenset[Severity]:
    try:
        return frozenset(Severity(s) for s in text.split(",") if s)
    except ValueError:
        raise ValidationError(f"severity: {text!r} is not a list of "
                              f"{', '.join(s.value for s in Severity)}") from None


def _rule_from(body: models.RuleIn, **keep: Any) -> AlertRule:
    return AlertRule(name=body.name.strip(), rule_type=body.rule_type, params=body.params,
                     severity=Severity(body.severity), enabled=body.enabled,
                     auto_resolve=body.auto_resolve,
                     scope=RuleScope(device_types=frozenset(body.device_types),
                                     tags=frozenset(body.tags),
                                     device_ids=frozenset(body.device_ids)), **keep)


def alerts_router(services: Callable[[], HasAlerts], actor: Callable[[], Actor],
                  check_version: Callable[[str | int, str], None]) -> Router:
    """``actor`` takes the caller from the authorizer's claims (and counts the
    request against its rate); ``check_version`` raises on a stale If-Match."""
    router = Router()

    def alerts() -> AlertService:
        return services().alerts

    # ------------------------------------------------------------ alerts
    @router.get("/alerts", summary="List alerts (paged)", tags=["alerts"])
    def list_alerts(
        limit: Annotated[int | None, Query(ge=1, le=500)] = None,
        next: Annotated[str, Query()] = "",
        state: Annotated[str, Query(description="comma-separated states")] = "",
        severity: Annotated[str, Query(description="comma-separated severities")] = "",
        device_id: Annotated[str, Query()] = "",
    ) -> Response[Any]:
        page = alerts().list_alerts(actor(), states=_states(state),
                                    severities=_severities(severity), device_id=device_id,
                                    limit=limit, next_token=next)
        return envelope({"items": [shapes.alert(a) for a in page.items], "next": page.next})

    @router.get("/alerts/counts", summary="Open alerts and those needing attention, "
                "by severity", tags=["alerts"])
    def alert_counts() -> Response[Any]:
        counts = alerts().counts(actor())
        return envelope({"open": {k.value: v for k, v in counts.open.items()},
                         "attention": {k.value: v for k, v in counts.attention.items()}})

    @router.get("/alerts/quarantine", summary="Rejected device input, newest first, "
                "with counts per reason", tags=["alerts"])
    def list_quarantine(
        reason: Annotated[str, Query(max_length=64)] = "",
        device_id: Annotated[str, Query(max_length=128)] = "",
        limit: Annotated[int, Query(ge=1, le=20000)] = 500,
    ) -> Response[Any]:
        listing = alerts().list_quarantine(actor(), reason=reason or None,
                                           device_id=device_id or None, limit=limit)
        return envelope({"items": [quarantined_json(m) for m in listing.messages],
                         "counts": listing.counts})

    @router.get("/alerts/<alert_id>", summary="One alert", tags=["alerts"])
    def get_alert(alert_id: str) -> Response[Any]:
        a = alerts().get_alert(actor(), alert_id)
        return envelope(shapes.alert(a), headers={"ETag": f'"{a.version}"'})

    def _alert_action(alert_id: str, act: Callable[[Actor], Alert]) -> Response[Any]:
        who = actor()
        check_version(alerts().get_alert(who, alert_id).version, f"alert {alert_id}")
        changed = act(who)
        return envelope(shapes.alert(changed), headers={"ETag": f'"{changed.version}"'})

    def _commented(alert_id: str, change: _Transition, comment: str) -> Response[Any]:
        service = alerts()
        return _alert_action(alert_id, lambda who: change(service, alert_id, who, comment))

    @router.post("/alerts/<alert_id>/acknowledge", summary="Acknowledge an alert",
                 tags=["alerts"])
    def acknowledge(alert_id: str, body: Annotated[models.CommentIn, Body()]) -> Response[Any]:
        return _commented(alert_id, AlertService.acknowledge, body.comment)

    @router.post("/alerts/<alert_id>/resolve", summary="Resolve an alert", tags=["alerts"])
    def resolve(alert_id: str, body: Annotated[models.CommentIn, Body()]) -> Response[Any]:
        return _commented(alert_id, AlertService.resolve, body.comment)

    @router.post("/alerts/<alert_id>/reopen", summary="Reopen a resolved or snoozed alert",
                 tags=["alerts"])
    def reopen(alert_id: str, body: Annotated[models.CommentIn, Body()]) -> Response[Any]:
        return _commented(alert_id, AlertService.reopen, body.comment)

    @router.post("/alerts/<alert_id>/snooze", summary="Snooze an alert", tags=["alerts"])
    def snooze(alert_id: str, body: Annotated[models.SnoozeIn, Body()]) -> Response[Any]:
        if (body.until is None) == (body.minutes is None):
            raise ValidationError("until: give either until or minutes")
        until = body.until or utcnow() + timedelta(minutes=body.minutes or 0)
        if until.tzinfo is None:
            raise ValidationError("until: give a time zone (e.g. 2026-12-04T18:00:00Z)")
        return _alert_action(alert_id, lambda who: alerts().snooze(
            alert_id, who, until, body.comment))

    # ------------------------------------------------------------ rules
    @router.get("/alerts/rules", summary="Alert rules", tags=["alerts"])
    def list_rules() -> Response[Any]:
        return envelope({"items": [shapes.rule(r) for r in alerts().list_rules(actor())],
                         "next": ""})

    @router.post("/alerts/rules", summary="Add an alert rule", tags=["alerts"])
    def create_rule(body: Annotated[models.RuleIn, Body()]) -> Response[Any]:
        # The service checks the role first (a refused role hears 403, audited,
        # not 400), then the parameters, and scopes the rule to the organization.
        return envelope(shapes.rule(alerts().add_rule(_rule_from(body), actor())), 201)

    @router.post("/alerts/rules/defaults",
                 summary="Add the default rules to an empty rules table", tags=["alerts"])
    def add_default_rules() -> Response[Any]:
        added = alerts().add_default_rules(actor())
        return envelope({"items": [shapes.rule(r) for r in added], "next": ""}, 201)

    @router.post("/alerts/rules/import",
                 summary="Bring the rules in line with a file (adds and updates, never deletes)",
                 tags=["alerts"])
    def import_rules(body: Annotated[RuleImportIn, Body()]) -> Response[Any]:
        result = alerts().import_rules([_rule_from(r, rule_id=r.rule_id) for r in body.rules],
                                       actor())
        return envelope({"added": [shapes.rule(r) for r in result.added],
                         "updated": [shapes.rule(r) for r in result.updated],
                         "unchanged": [shapes.rule(r) for r in result.unchanged]})

    @router.put("/alerts/rules/<rule_id>", summary="Edit an alert rule (If-Match: version)",
                tags=["alerts"])
    def update_rule(rule_id: str, body: Annotated[models.RuleIn, Body()]) -> Response[Any]:
        who = actor()
        current = alerts().get_rule(who, rule_id)
        check_version(current.version, f"rule {rule_id}")
        rule = _rule_from(body, rule_id=rule_id, created_at=current.created_at,
                          version=current.version + 1)
        # The request cannot name organizations: the rule keeps its reach.
        rule = replace(rule, scope=replace(rule.scope, organizations=current.scope.organizations))
        return envelope(shapes.rule(alerts().save_rule(rule, who)))

    @router.delete("/alerts/rules/<rule_id>", summary="Delete an alert rule", tags=["alerts"])
    def delete_rule(rule_id: str) -> Response[Any]:
        alerts().delete_rule(rule_id, actor())
        return envelope({"rule_id": rule_id, "deleted": True})

    return router
