"""What people do to alerts and alert rules: acknowledge, resolve, snooze,
reopen; add, edit and delete rules. Each call takes the Actor, checks the
role and writes the audit entry (refusals included), so the page, the CLI
and any other front end get the same answer.

Every action is a versioned save (two consoles acting at once: exactly one
wins, the other gets ConcurrentModification naming who won) followed by an
audit entry. The order matters: the audit entry is written only for a change
that was really stored, and the action is reported as done only after both,
so nothing a person saw confirmed is missing from the trail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from core.errors import (
    ConcurrentModification,
    IllegalTransition,
    NotFound,
    SmartIotError,
    ValidationError,
)
from core.model import Alert, AlertState
from core.model.roles import Actor, Permission
from core.model.rule import AlertRule
from core.model.timeutil import utcnow
from core.ports.alerts import AlertStore
from core.ports.hub import AlertRuleStore, AuditTrail
from core.services.access import authorize, record_action


@dataclass(frozen=True, slots=True)
class RuleImport:
    """What an import did, rule by rule, for the front end to report."""

    added: list[AlertRule]
    updated: list[AlertRule]
    unchanged: list[AlertRule]


def same_rule_content(a: AlertRule, b: AlertRule) -> bool:
    """Equal as a person edits them: ids, versions and timestamps aside."""
    return (a.name, a.rule_type, a.params, a.severity, a.scope, a.enabled, a.auto_resolve,
            a.escalate_after_s) == (b.name, b.rule_type, b.params, b.severity, b.scope,
                                    b.enabled, b.auto_resolve, b.escalate_after_s)


@dataclass(frozen=True, slots=True)
class ActionResult:
    """One alert's outcome in a bulk action; ``error`` is ready to show a person."""

    alert_id: str
    alert: Alert | None = None
    error: str = ""
    changed_by: str | None = None

    @property
    def ok(self) -> bool:
        return not self.error


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


class AlertService:
    def __init__(self, alerts: AlertStore, audit: AuditTrail | None = None,
                 clock: Callable[[], datetime] = utcnow, *,
                 rules: AlertRuleStore | None = None) -> None:
        """``audit`` may be None on backends without an audit trail; callers
        should tell the person their actions are not audited there."""
        self._alerts = alerts
        self._audit = audit
        self._clock = clock
        self._rules = rules

    @property
    def audited(self) -> bool:
        return self._audit is not None

    # ------------------------------------------------------------------ single
    def acknowledge(self, alert_id: str, actor: Actor, comment: str = "") -> Alert:
        self._authorize(actor, "alert.acknowledge", alert_id)
        alert = self._alerts.get(alert_id)
        changed = alert.acknowledge(actor.user, comment, at=self._clock())
        return self._commit(changed, actor, "alert.acknowledge", {"comment": comment})

    def resolve(self, alert_id: str, actor: Actor, comment: str = "") -> Alert:
        """The comment is kept on the alert, in its history (which a
        recurrence does not erase) and in the audit trail."""
        self._authorize(actor, "alert.resolve", alert_id)
        alert = self._alerts.get(alert_id)
        changed = alert.resolve(actor.user, comment, at=self._clock())
        return self._commit(changed, actor, "alert.resolve", {"comment": comment})

    def snooze(self, alert_id: str, actor: Actor, until: datetime,
               comment: str = "") -> Alert:
        """The comment (why it can wait) goes to the audit trail."""
        self._authorize(actor, "alert.snooze", alert_id)
        alert = self._alerts.get(alert_id)
        changed = alert.snooze(until, at=self._clock())
        details: dict[str, Any] = {"until": changed.snoozed_until.isoformat()
                                   if changed.snoozed_until else None}
        if comment:
            details["comment"] = comment
        return self._commit(changed, actor, "alert.snooze", details)

    def reopen(self, alert_id: str, actor: Actor, comment: str = "") -> Alert:
        """A person decides a resolved alert is not over after all; it becomes
        active again with its last value and message."""
        self._authorize(actor, "alert.reopen", alert_id)
        alert = self._alerts.get(alert_id)
        changed = alert.reopen(alert.value, alert.message, at=self._clock())
        return self._commit(changed, actor, "alert.reopen", {"comment": comment})

    def _authorize(self, actor: Actor, action: str, alert_id: str) -> None:
        authorize(self._audit, actor, Permission.ALERT_HANDLE, action, alert_id)

    def _commit(self, changed: Alert, actor: Actor, action: str,
                details: dict[str, Any]) -> Alert:
        self._alerts.save(changed)  # ConcurrentModification propagates, naming the winner
        record_action(self._audit, actor, action, changed.alert_id, {
            **details, "device_id": changed.device_id, "rule_id": changed.rule_id,
            "state": changed.state.value, "version": changed.version,
        })
        return changed

    # ------------------------------------------------------------------ rules
    def add_rule(self, rule: AlertRule, actor: Actor) -> AlertRule:
        rules = self._rule_store()
        authorize(self._audit, actor, Permission.RULE_EDIT, "rule.add", rule.rule_id)
        rules.add(rule)
        record_action(self._audit, actor, "rule.add", rule.rule_id, _rule_details(rule))
        return rule

    def save_rule(self, rule: AlertRule, actor: Actor) -> AlertRule:
        """``rule`` carries the next version; ConcurrentModification when
        someone else saved first."""
        rules = self._rule_store()
        authorize(self._audit, actor, Permission.RULE_EDIT, "rule.edit", rule.rule_id)
        rules.save(rule)
        record_action(self._audit, actor, "rule.edit", rule.rule_id, _rule_details(rule))
        return rule

    def delete_rule(self, rule_id: str, actor: Actor) -> None:
        rules = self._rule_store()
        authorize(self._audit, actor, Permission.RULE_EDIT, "rule.delete", rule_id)
        rules.delete(rule_id)
        record_action(self._audit, actor, "rule.delete", rule_id)

    def import_rules(self, rules: Iterable[AlertRule], actor: Actor) -> RuleImport:
        """Bring the stored rules in line with a file: new ids are added, rules
        whose content differs are saved as their next version, equal ones are
        left alone (so importing the same file twice changes and audits nothing).
        Rules not in the file are kept: a file is not a licence to delete."""
        rules_store = self._rule_store()
        added: list[AlertRule] = []
        updated: list[AlertRule] = []
        unchanged: list[AlertRule] = []
        for rule in rules:
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

    def add_default_rules(self, actor: Actor) -> list[AlertRule]:
        """The first-run offer: the default rule set, only into an empty rules
        table (a team that already has rules keeps exactly those)."""
        from core.services.alerting.defaults import default_rules

        rules_store = self._rule_store()
        authorize(self._audit, actor, Permission.RULE_EDIT, "rule.add", "defaults")
        if rules_store.list():
            raise ValidationError("the database already has alert rules; the default set "
                                  "is only offered to an empty rules table")
        return [self.add_rule(rule, actor) for rule in default_rules()]

    def _rule_store(self) -> AlertRuleStore:
        if self._rules is None:
            raise NotFound("this backend keeps no alert rules")
        return self._rules

    # ------------------------------------------------------------------ bulk
    def acknowledge_many(self, alert_ids: Iterable[str], actor: Actor,
                         comment: str = "") -> list[ActionResult]:
        return self._each(alert_ids, lambda a: self.acknowledge(a, actor, comment))

    def resolve_many(self, alert_ids: Iterable[str], actor: Actor,
                     comment: str = "") -> list[ActionResult]:
        return self._each(alert_ids, lambda a: self.resolve(a, actor, comment))

    def snooze_many(self, alert_ids: Iterable[str], actor: Actor,
                    until: datetime, comment: str = "") -> list[ActionResult]:
        return self._each(alert_ids, lambda a: self.snooze(a, actor, until, comment))

    def _each(self, alert_ids: Iterable[str],
              action: Callable[[str], Alert]) -> list[ActionResult]:
        """Each alert on its own: one that someone else already handled must not
        stop the rest of a bulk acknowledgement."""
        results: list[ActionResult] = []
        for alert_id in alert_ids:
            try:
                results.append(ActionResult(alert_id, action(alert_id)))
            except ConcurrentModification as exc:
                results.append(ActionResult(alert_id, error=self._explain(alert_id, exc),
                                            changed_by=exc.changed_by))
            except IllegalTransition as exc:
                results.append(self._refused(alert_id, exc))
            except SmartIotError as exc:
                results.append(ActionResult(alert_id, error=str(exc)))
        return results

    def _explain(self, alert_id: str, exc: ConcurrentModification) -> str:
        try:
            return describe_state(self._alerts.get(alert_id), now=self._clock())
        except SmartIotError:
            return str(exc)

    def _refused(self, alert_id: str, exc: IllegalTransition) -> ActionResult:
        """Lifecycle refusals (already acknowledged...) are phrased from the stored
        alert, which knows who and when."""
        try:
            current = self._alerts.get(alert_id)
        except SmartIotError:
            return ActionResult(alert_id, error=str(exc))
        if current.state is AlertState.ACTIVE:
            return ActionResult(alert_id, error=str(exc))
        who = current.acknowledged_by if current.state is AlertState.ACKNOWLEDGED \
            else current.resolved_by
        return ActionResult(alert_id, error=describe_state(current, now=self._clock()),
                            changed_by=who)


def _rule_details(rule: AlertRule) -> dict[str, Any]:
    return {"name": rule.name, "rule_type": rule.rule_type, "severity": rule.severity.value,
            "enabled": rule.enabled, "version": rule.version}
