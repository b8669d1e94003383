"""What people do to and read about alerts, alert rules and rejected device
input. Each call takes the Actor, checks the role, limits the answer to the
actor's organization and writes the audit entry (refusals included), so the
Qt pages, the CLI and the REST API get the same answer.

Every action is a versioned save (two consoles acting at once: exactly one
wins, the other gets ConcurrentModification naming who won) followed by an
audit entry. The order matters: the audit entry is written only for a change
that was really stored, and the action is reported as done only after both,
so nothing a person saw confirmed is missing from the trail.

Organization scope: an actor with an organization sees only the alerts of
that organization's devices, and an alert of another organization is
answered as unknown (NotFound) rather than forbidden, so its id cannot be
probed. Rules are visible when they apply to the actor's organization (their
scope names it, or names no organization at all); an organization's people
change only the rules scoped to their organization alone, and the rules they
add are scoped to it. An actor without an organization (the single-user
local console, the hub's operator) sees and changes everything.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.errors import (
    ConcurrentModification,
    IllegalTransition,
    NotFound,
    PermissionDenied,
    SmartIotError,
    ValidationError,
)
from core.model import Alert, AlertEvent, AlertState, Severity
from core.model.alert import AlertEventKind
from core.model.link import QuarantinedMessage
from core.model.roles import Actor, Permission
from core.model.rule import AlertRule
from core.model.timeutil import utcnow
from core.ports.alerts import AlertQuery, AlertStore
from core.ports.fleet_api.alerts import (
    ActionResult,
    AlertCounts,
    AlertDetail,
    AlertFeatures,
    QuarantineListing,
    RuleImport,
)
from core.ports.hub import AlertRuleStore, AuditTrail, QuarantineStore
from core.ports.registry import DeviceQuery, DeviceRegistry
from core.ports.telemetry import TelemetryStore
from core.registrations import AlertRuleTypeSpec
from core.services.access import DENIED, authorize, record_action
from core.services.fleet_health import attention_counts, load_attention_counts
from core.services.fleet_view import MAX_PAGE, Page, decode_token, encode_token

if TYPE_CHECKING:  # wiring imports this module
    from core.services.wiring import Services

log = logging.getLogger(__name__)

__all__ = ["ActionResult", "AlertService", "AlertsSession", "RuleImport", "describe_state",
           "same_rule_content"]

DEFAULT_PAGE = 50
DETAIL_WINDOW = timedelta(minutes=30)
OPEN_STATES = frozenset({AlertState.ACTIVE, AlertState.ACKNOWLEDGED})
# An organization's view of the quarantine filters the newest rejected messages
# of the whole hub; this many are read for every one asked for.
QUARANTINE_SCAN_FACTOR = 10
_AUDIT_KINDS = {"alert.acknowledge": AlertEventKind.ACKNOWLEDGED,
                "alert.resolve": AlertEventKind.RESOLVED,
                "alert.snooze": AlertEventKind.SNOOZED,
                "alert.reopen": AlertEventKind.REOPENED}


def same_rule_content(a: AlertRule, b: AlertRule) -> bool:
    """Equal as a person edits them: ids, versions and timestamps aside."""
    return (a.name, a.rule_type, a.params, a.severity, a.scope, a.enabled, a.auto_resolve,
            a.escalate_after_s) == (b.name, b.rule_type, b.params, b.severity, b.scope,
                                    b.enabled, b.auto_resolve, b.escalate_after_s)


def describe_state(alert: Alert, *, now: datetime | None = None) -> str:
    """ "already acknowledged by maria at 10:42": the sentence a person needs
    when their action lost to someone else's."""
    if alert.state is AlertState.ACKNOWLEDGED:
        return f"already acknowledged by {alert.acknowledged_by or 'someone'}" + _when(
            alert.acknowledged_at, now)
    if alert.state is AlertState.RESOLVED:
        return f"already resolved by {alert.resolved_by or 'someone'}" + _when(
            alert.resolved_at, now)
    return "still active"


def _when(at: datetime | None, now: datetime | None) -> str:
    if at is None:
        return ""
    local = at.astimezone()
    today = (now or datetime.now(UTC)).astimezone().date()
    return f" at {local:%H:%M}" if local.date() == today else f" on {local:%Y-%m-%d %H:%M}"


def _page_size(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit: {limit} must be between 1 and {MAX_PAGE}")
    return limit


class AlertService:
    def __init__(self, alerts: AlertStore, audit: AuditTrail | None = None,
                 clock: Callable[[], datetime] = utcnow, *,
                 rules: AlertRuleStore | None = None,
                 registry: DeviceRegistry | None = None,
                 telemetry: TelemetryStore | None = None,
                 quarantine: QuarantineStore | None = None,
                 rule_types: Mapping[str, AlertRuleTypeSpec] | None = None) -> None:
        """``audit`` may be None on backends without an audit trail; callers
        should tell the person their actions are not audited there. Without
        a ``registry`` nobody with an organization sees any alert (their
        scope cannot be checked). ``rule_types``, when given, validates every
        rule before it is stored, naming the bad parameter."""
        self._alerts = alerts
        self._audit = audit
        self._clock = clock
        self._rules = rules
        self._registry = registry
        self._telemetry = telemetry
        self._quarantine = quarantine
        self._rule_types = rule_types

    @property
    def audited(self) -> bool:
        return self._audit is not None

    def features(self, actor: Actor) -> AlertFeatures:
        return AlertFeatures(rules=self._rules is not None,
                             quarantine=self._quarantine is not None, audited=self.audited)

    # ------------------------------------------------------------------ scope
    def _device_visible(self, actor: Actor, device_id: str) -> bool:
        if not actor.organization:
            return True
        device = self._registry.find(device_id) if self._registry is not None else None
        return device is not None and device.organization == actor.organization

    def _visible_ids(self, actor: Actor) -> set[str] | None:
        """The device ids the actor may see; None: all of them."""
        if not actor.organization:
            return None
        if self._registry is None:
            return set()
        return {d.device_id for d in self._registry.list(DeviceQuery(
            organizations=frozenset({actor.organization})))}

    def _visible_alert(self, actor: Actor, alert_id: str) -> Alert:
        alert = self._alerts.get(alert_id)
        if not self._device_visible(actor, alert.device_id):
            raise NotFound(f"alert {alert_id} does not exist")
        return alert

    @staticmethod
    def _rule_visible(actor: Actor, rule: AlertRule) -> bool:
        orgs = rule.scope.organizations
        return not actor.organization or not orgs or actor.organization in orgs

    def _deny(self, actor: Actor, action: str, subject: str, reason: str) -> None:
        """A refusal that is about scope rather than role, audited like one."""
        if self._audit is not None:
            try:
                self._audit.append(actor.user, action, subject, {
                    **actor.audit_details(), "outcome": DENIED, "reason": reason})
            except Exception:
                log.exception("could not audit the refused %s on %s by %s", action, subject,
                              actor.user)
        raise PermissionDenied(reason)

    # ------------------------------------------------------------------ reads
    def list_alerts(self, actor: Actor, *, states: frozenset[AlertState] = frozenset(),
                    severities: frozenset[Severity] = frozenset(), device_id: str = "",
                    since: datetime | None = None, limit: int | None = None,
                    next_token: str = "") -> Page[Alert]:
        """Newest first, cut into pages here (not in the front end) so every
        front end pages through the same rows."""
        if device_id and not self._device_visible(actor, device_id):
            raise NotFound(f"device {device_id} is not registered")
        size = _page_size(limit)
        offset = decode_token(next_token)
        if actor.organization and self._registry is None:
            return Page([])  # the scope cannot be checked: nothing is shown
        # Cut in the store (one more row tells whether a next page exists), limited
        # there to the organization's registered devices.
        rows = self._alerts.list(AlertQuery(
            device_id=device_id, states=states, severities=severities, since=since,
            organization=actor.organization, offset=offset, limit=size + 1))
        return Page(rows[:size], encode_token(offset + size) if len(rows) > size else "")

    def get_alert(self, actor: Actor, alert_id: str) -> Alert:
        return self._visible_alert(actor, alert_id)

    def counts(self, actor: Actor) -> AlertCounts:
        visible = self._visible_ids(actor)
        now = self._clock()
        if visible is None:
            return AlertCounts(self._alerts.counts_by_severity(open_only=True),
                               load_attention_counts(self._alerts, now))
        mine = [a for a in self._alerts.list(AlertQuery(states=OPEN_STATES,
                                                        organization=actor.organization))
                if a.device_id in visible]
        open_counts = {s: 0 for s in Severity}
        for a in mine:
            open_counts[a.severity] += 1
        return AlertCounts({s: n for s, n in open_counts.items() if n},
                           attention_counts((a for a in mine if a.state is AlertState.ACTIVE),
                                            now))

    def detail(self, actor: Actor, alert_id: str) -> AlertDetail:
        """The alert page's detail panel in one call: its rule, the metric
        half an hour either side of when it was raised, and its history."""
        alert = self._visible_alert(actor, alert_id)
        rule: AlertRule | None = None
        if self._rules is not None:
            try:
                rule = self._rules.get(alert.rule_id)
            except NotFound:
                rule = None
        metric = str(rule.params.get("metric") or "") if rule is not None else ""
        series = None
        if self._telemetry is not None:
            if not metric:
                metrics = self._telemetry.metrics_for(alert.device_id)
                metric = metrics[0] if metrics else ""
            if metric:
                series = self._telemetry.query(alert.device_id, metric,
                                               alert.created_at - DETAIL_WINDOW,
                                               alert.created_at + DETAIL_WINDOW)
        return AlertDetail(alert, rule, metric, series, self._history(alert))

    def _history(self, alert: Alert) -> builtins.list[AlertEvent]:
        """The store's history (kept across reopenings); a store without one
        is answered from the audit trail's entries about the alert."""
        try:
            events = self._alerts.history(alert.alert_id)
        except SmartIotError:
            log.debug("alert history unavailable", exc_info=True)
            events = []
        if events:
            return events
        search = getattr(self._audit, "search", None)
        if search is None:
            return []
        from core.ports.audit import AuditFilter

        try:
            entries = search(AuditFilter(action="alert.", subject=alert.alert_id))
        except SmartIotError:
            log.debug("audit trail unavailable", exc_info=True)
            return []
        found = [AlertEvent(alert.alert_id, alert.created_at, AlertEventKind.RAISED, "system")]
        for e in entries:
            kind = _AUDIT_KINDS.get(e.action)
            if kind is None or e.subject != alert.alert_id or e.details.get("outcome") == DENIED:
                continue
            found.append(AlertEvent(alert.alert_id, e.ts, kind, e.actor,
                                    str(e.details.get("comment") or ""),
                                    {k: v for k, v in e.details.items() if k == "until"},
                                    int(e.details.get("version") or 1)))
        return sorted(found, key=lambda ev: ev.at) if len(found) > 1 else []

    # ------------------------------------------------------------------ single
    def acknowledge(self, alert_id: str, actor: Actor, comment: str = "") -> Alert:
        alert = self._authorized_alert(actor, "alert.acknowledge", alert_id)
        changed = alert.acknowledge(actor.user, comment, at=self._clock())
        return self._commit(changed, actor, "alert.acknowledge", {"comment": comment})

    def resolve(self, alert_id: str, actor: Actor, comment: str = "") -> Alert:
        """The comment is kept on the alert, in its history (which a
        recurrence does not erase) and in the audit trail."""
        alert = self._authorized_alert(actor, "alert.resolve", alert_id)
        changed = alert.resolve(actor.user, comment, at=self._clock())
        return self._commit(changed, actor, "alert.resolve", {"comment": comment})

    def snooze(self, alert_id: str, actor: Actor, until: datetime,
               comment: str = "") -> Alert:
        """The comment (why it can wait) goes to the audit trail."""
        alert = self._authorized_alert(actor, "alert.snooze", alert_id)
        changed = alert.snooze(until, at=self._clock())
        details: dict[str, Any] = {"until": changed.snoozed_until.isoformat()
                                   if changed.snoozed_until else None}
        if comment:
            details["comment"] = comment
        return self._commit(changed, actor, "alert.snooze", details)

    def reopen(self, alert_id: str, actor: Actor, comment: str = "") -> Alert:
        """A person decides a resolved alert is not over after all; it becomes
        active again with its last value and message."""
        alert = self._authorized_alert(actor, "alert.reopen", alert_id)
        changed = alert.reopen(alert.value, alert.message, at=self._clock())
        return self._commit(changed, actor, "alert.reopen", {"comment": comment})

    def _authorized_alert(self, actor: Actor, action: str, alert_id: str) -> Alert:
        """Role first (a refused role is audited whatever the id), then scope:
        another organization's alert is as unknown as a missing one."""
        authorize(self._audit, actor, Permission.ALERT_HANDLE, action, alert_id)
        return self._visible_alert(actor, alert_id)

    def _commit(self, changed: Alert, actor: Actor, action: str,
                details: dict[str, Any]) -> Alert:
        self._alerts.save(changed)  # ConcurrentModification propagates, naming the winner
        record_action(self._audit, actor, action, changed.alert_id, {
            **details, "device_id": changed.device_id, "rule_id": changed.rule_id,
            "state": changed.state.value, "version": changed.version,
        })
        return changed

    # ------------------------------------------------------------------ bulk
    def acknowledge_many(self, alert_ids: Iterable[str], actor: Actor,
                         comment: str = "") -> builtins.list[ActionResult]:
        return self._each(actor, alert_ids, lambda a: self.acknowledge(a, actor, comment))

    def resolve_many(self, alert_ids: Iterable[str], actor: Actor,
                     comment: str = "") -> builtins.list[ActionResult]:
        return self._each(actor, alert_ids, lambda a: self.resolve(a, actor, comment))

    def snooze_many(self, alert_ids: Iterable[str], actor: Actor,
                    until: datetime, comment: str = "") -> builtins.list[ActionResult]:
        return self._each(actor, alert_ids, lambda a: self.snooze(a, actor, until, comment))

    def reopen_many(self, alert_ids: Iterable[str], actor: Actor,
                    comment: str = "") -> builtins.list[ActionResult]:
        return self._each(actor, alert_ids, lambda a: self.reopen(a, actor, comment))

    def _each(self, actor: Actor, alert_ids: Iterable[str],
              action: Callable[[str], Alert]) -> builtins.list[ActionResult]:
        """Each alert on its own: one that someone else already handled must not
        stop the rest of a bulk acknowledgement."""
        results: list[ActionResult] = []
        for alert_id in alert_ids:
            try:
                results.append(ActionResult(alert_id, action(alert_id)))
            except ConcurrentModification as exc:
                current = self._current(actor, alert_id)
                text = describe_state(current, now=self._clock()) if current else str(exc)
                results.append(ActionResult(alert_id, current, text, exc.changed_by))
            except IllegalTransition as exc:
                results.append(self._refused(actor, alert_id, exc))
            except SmartIotError as exc:
                results.append(ActionResult(alert_id, self._current(actor, alert_id),
                                            str(exc)))
        return results

    def _current(self, actor: Actor, alert_id: str) -> Alert | None:
        try:
            return self._visible_alert(actor, alert_id)
        except SmartIotError:
            return None

    def _refused(self, actor: Actor, alert_id: str, exc: IllegalTransition) -> ActionResult:
        """Lifecycle refusals (already acknowledged...) are phrased from the stored
        alert, which knows who and when."""
        current = self._current(actor, alert_id)
        if current is None or current.state is AlertState.ACTIVE:
            return ActionResult(alert_id, current, str(exc))
        who = current.acknowledged_by if current.state is AlertState.ACKNOWLEDGED \
            else current.resolved_by
        return ActionResult(alert_id, current, describe_state(current, now=self._clock()), who)

    # ------------------------------------------------------------------ rules
    def list_rules(self, actor: Actor) -> builtins.list[AlertRule]:
        return [r for r in self._rule_store().list() if self._rule_visible(actor, r)]

    def get_rule(self, actor: Actor, rule_id: str) -> AlertRule:
        rule = self._rule_store().get(rule_id)
        if not self._rule_visible(actor, rule):
            raise NotFound(f"rule {rule_id} does not exist")
        return rule

    def add_rule(self, rule: AlertRule, actor: Actor) -> AlertRule:
        """An organization's rule is scoped to that organization, whatever
        the request said: it must never watch another team's devices."""
        rules = self._rule_store()
        authorize(self._audit, actor, Permission.RULE_EDIT, "rule.add", rule.rule_id)
        if actor.organization:
            rule = replace(rule, scope=replace(
                rule.scope, organizations=frozenset({actor.organization})))
        self._validate(rule)
        rules.add(rule)
        record_action(self._audit, actor, "rule.add", rule.rule_id, _rule_details(rule))
        return rule

    def save_rule(self, rule: AlertRule, actor: Actor) -> AlertRule:
        """``rule`` carries the next version; ConcurrentModification when
        someone else saved first. The stored rule's organizations are kept
        for an organization's people (they cannot widen a rule's reach)."""
        rules = self._rule_store()
        authorize(self._audit, actor, Permission.RULE_EDIT, "rule.edit", rule.rule_id)
        current = self._owned_rule(actor, "rule.edit", rule.rule_id)
        if actor.organization:
            rule = replace(rule, scope=replace(
                rule.scope, organizations=current.scope.organizations))
        self._validate(rule)
        rules.save(rule)
        record_action(self._audit, actor, "rule.edit", rule.rule_id, _rule_details(rule))
        return rule

    def delete_rule(self, rule_id: str, actor: Actor) -> None:
        rules = self._rule_store()
        authorize(self._audit, actor, Permission.RULE_EDIT, "rule.delete", rule_id)
        self._owned_rule(actor, "rule.delete", rule_id)
        rules.delete(rule_id)
        record_action(self._audit, actor, "rule.delete", rule_id)

    def import_rules(self, rules: Iterable[AlertRule], actor: Actor) -> RuleImport:
        """Bring the stored rules in line with a file: new ids are added, rules
        whose content differs are saved as their next version, equal ones are
        left alone (so importing the same file twice changes and audits nothing).
        Rules not in the file are kept: a file is not a licence to delete."""
        rules_store = self._rule_store()
        authorize(self._audit, actor, Permission.RULE_EDIT, "rule.import", "file")
        added: list[AlertRule] = []
        updated: list[AlertRule] = []
        unchanged: list[AlertRule] = []
        for rule in rules:
            if actor.organization:
                rule = replace(rule, scope=replace(
                    rule.scope, organizations=frozenset({actor.organization})))
            try:
                current = rules_store.get(rule.rule_id)
            except NotFound:
                added.append(self.add_rule(rule, actor))
                continue
            if same_rule_content(current, rule):
                unchanged.append(current)
                continue
            updated.append(self.save_rule(replace(
                rule, version=current.version + 1, created_at=current.created_at,
                updated_at=utcnow()), actor))
        return RuleImport(added, updated, unchanged)

    def add_default_rules(self, actor: Actor) -> builtins.list[AlertRule]:
        """The first-run offer: the default rule set, only into an empty rules
        table (a team that already has rules keeps exactly those)."""
        from core.services.alerting.defaults import default_rules

        authorize(self._audit, actor, Permission.RULE_EDIT, "rule.add", "defaults")
        if self.list_rules(actor):
            raise ValidationError("the database already has alert rules; the default set "
                                  "is only offered to an empty rules table")
        return [self.add_rule(rule, actor) for rule in default_rules()]

    def _owned_rule(self, actor: Actor, action: str, rule_id: str) -> AlertRule:
        current = self.get_rule(actor, rule_id)
        if actor.organization and current.scope.organizations != {actor.organization}:
            self._deny(actor, action, rule_id,
                       f"rule {rule_id} applies beyond organization {actor.organization}; "
                       "only someone without an organization (the hub's operator) may "
                       "change it")
        return current

    def _validate(self, rule: AlertRule) -> None:
        if self._rule_types is not None:
            from core.services.alerting.builtin import build_evaluator

            build_evaluator(rule, self._rule_types)

    def _rule_store(self) -> AlertRuleStore:
        if self._rules is None:
            raise NotFound("this backend keeps no alert rules")
        return self._rules

    # ------------------------------------------------------------------ quarantine
    def list_quarantine(self, actor: Actor, *, reason: str | None = None,
                        device_id: str | None = None, limit: int = 500) -> QuarantineListing:
        """Rejected device input (read-only). Every role may read it, within
        its organization: technicians need it to see why a device they just
        installed sends nothing usable, support to explain readings missing
        from an alert, engineers to debug firmware. It holds the
        organization's own device data and nothing that changes the fleet,
        so there is no permission to hold back. Messages that cannot be tied
        to a device of the actor's organization (unknown devices, malformed
        topics) are shown only to actors without an organization; for the
        others the counts cover the newest messages scanned, not all time."""
        store = self._quarantine
        if store is None:
            raise NotFound("this backend keeps no rejected messages")
        if not 1 <= limit <= 20_000:
            raise ValidationError(f"limit: {limit} must be between 1 and 20000")
        visible = self._visible_ids(actor)
        if visible is None:
            return QuarantineListing(store.list(limit=limit, reason=reason,
                                                device_id=device_id),
                                     store.counts_by_reason())
        if device_id is not None and device_id not in visible:
            return QuarantineListing([], {})
        scanned = store.list(limit=limit * QUARANTINE_SCAN_FACTOR, device_id=device_id)
        mine = [m for m in scanned if m.device_id in visible]
        return QuarantineListing([m for m in mine if reason is None or m.reason == reason]
                                 [:limit], _count_reasons(mine))


def _count_reasons(messages: Sequence[QuarantinedMessage]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for m in messages:
        counts[m.reason] = counts.get(m.reason, 0) + 1
    return counts


def _rule_details(rule: AlertRule) -> dict[str, Any]:
    return {"name": rule.name, "rule_type": rule.rule_type, "severity": rule.severity.value,
            "enabled": rule.enabled, "version": rule.version}


class AlertsSession:
    """The alerts use cases bound to one person (core.ports.fleet_api.AlertsApi)."""

    def __init__(self, services: Services, actor: Actor) -> None:
        self._service: AlertService = services.alerts
        self._actor = actor

    def features(self) -> AlertFeatures:
        return self._service.features(self._actor)

    def list_alerts(self, *, states: frozenset[AlertState] = frozenset(),
                    severities: frozenset[Severity] = frozenset(), device_id: str = "",
                    since: datetime | None = None, limit: int | None = None,
                    next_token: str = "") -> Page[Alert]:
        return self._service.list_alerts(self._actor, states=states, severities=severities,
                                         device_id=device_id, since=since, limit=limit,
                                         next_token=next_token)

    def get_alert(self, alert_id: str) -> Alert:
        return self._service.get_alert(self._actor, alert_id)

    def counts(self) -> AlertCounts:
        return self._service.counts(self._actor)

    def detail(self, alert_id: str) -> AlertDetail:
        return self._service.detail(self._actor, alert_id)

    def acknowledge(self, alert_id: str, comment: str = "") -> Alert:
        return self._service.acknowledge(alert_id, self._actor, comment)

    def resolve(self, alert_id: str, comment: str = "") -> Alert:
        return self._service.resolve(alert_id, self._actor, comment)

    def snooze(self, alert_id: str, until: datetime, comment: str = "") -> Alert:
        return self._service.snooze(alert_id, self._actor, until, comment)

    def reopen(self, alert_id: str, comment: str = "") -> Alert:
        return self._service.reopen(alert_id, self._actor, comment)

    def acknowledge_many(self, alert_ids: Iterable[str],
                         comment: str = "") -> builtins.list[ActionResult]:
        return self._service.acknowledge_many(alert_ids, self._actor, comment)

    def resolve_many(self, alert_ids: Iterable[str],
                     comment: str = "") -> builtins.list[ActionResult]:
        return self._service.resolve_many(alert_ids, self._actor, comment)

    def snooze_many(self, alert_ids: Iterable[str], until: datetime,
                    comment: str = "") -> builtins.list[ActionResult]:
        return self._service.snooze_many(alert_ids, self._actor, until, comment)

    def reopen_many(self, alert_ids: Iterable[str],
                    comment: str = "") -> builtins.list[ActionResult]:
        return self._service.reopen_many(alert_ids, self._actor, comment)

    def list_rules(self) -> builtins.list[AlertRule]:
        return self._service.list_rules(self._actor)

    def get_rule(self, rule_id: str) -> AlertRule:
        return self._service.get_rule(self._actor, rule_id)

    def add_rule(self, rule: AlertRule) -> AlertRule:
        return self._service.add_rule(rule, self._actor)

    def save_rule(self, rule: AlertRule) -> AlertRule:
        return self._service.save_rule(rule, self._actor)

    def delete_rule(self, rule_id: str) -> None:
        self._service.delete_rule(rule_id, self._actor)

    def import_rules(self, rules: Iterable[AlertRule]) -> RuleImport:
        return self._service.import_rules(rules, self._actor)

    def add_default_rules(self) -> builtins.list[AlertRule]:
        return self._service.add_default_rules(self._actor)

    def list_quarantine(self, *, reason: str | None = None, device_id: str | None = None,
                        limit: int = 500) -> QuarantineListing:
        return self._service.list_quarantine(self._actor, reason=reason, device_id=device_id,
                                             limit=limit)
