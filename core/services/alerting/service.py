"""What support staff do to alerts: acknowledge, resolve, snooze.

Every action is a versioned save (two consoles acting at once: exactly one
wins, the other gets ConcurrentModification naming who won) followed by an
audit entry. The order matters: the audit entry is written only for a change
that was really stored, and the action is reported as done only after both,
so nothing a person saw confirmed is missing from the trail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.errors import (
    ConcurrentModification,
    IllegalTransition,
    SmartIotError,
    ValidationError,
)
from core.model import Alert, AlertState
from core.model.timeutil import utcnow
from core.ports.alerts import AlertStore
from core.ports.hub import AuditTrail


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
                 clock: Callable[[], datetime] = utcnow) -> None:
        """``audit`` may be None on backends without an audit trail; callers
        should tell the person their actions are not audited there."""
        self._alerts = alerts
        self._audit = audit
        self._clock = clock

    @property
    def audited(self) -> bool:
        return self._audit is not None

    # ------------------------------------------------------------------ single
    def acknowledge(self, alert_id: str, user: str, comment: str = "") -> Alert:
        alert = self._alerts.get(alert_id)
        changed = alert.acknowledge(user, comment, at=self._clock())
        return self._commit(changed, user, "alert.acknowledge", {"comment": comment})

    def resolve(self, alert_id: str, user: str, comment: str = "") -> Alert:
        """The comment goes to the audit trail (the alert itself keeps no
        resolution note)."""
        alert = self._alerts.get(alert_id)
        changed = alert.resolve(user, at=self._clock())
        return self._commit(changed, user, "alert.resolve", {"comment": comment})

    def snooze(self, alert_id: str, user: str, until: datetime) -> Alert:
        if not user:
            raise ValidationError("snoozing needs the name of the person who does it")
        alert = self._alerts.get(alert_id)
        changed = alert.snooze(until, at=self._clock())
        return self._commit(changed, user, "alert.snooze",
                            {"until": changed.snoozed_until.isoformat()
                             if changed.snoozed_until else None})

    def _commit(self, changed: Alert, user: str, action: str,
                details: dict[str, Any]) -> Alert:
        self._alerts.save(changed)  # ConcurrentModification propagates, naming the winner
        if self._audit is not None:
            self._audit.append(user, action, changed.alert_id, {
                **details, "device_id": changed.device_id, "rule_id": changed.rule_id,
                "state": changed.state.value, "version": changed.version,
            })
        return changed

    # ------------------------------------------------------------------ bulk
    def acknowledge_many(self, alert_ids: Iterable[str], user: str,
                         comment: str = "") -> list[ActionResult]:
        return self._each(alert_ids, lambda a: self.acknowledge(a, user, comment))

    def resolve_many(self, alert_ids: Iterable[str], user: str,
                     comment: str = "") -> list[ActionResult]:
        return self._each(alert_ids, lambda a: self.resolve(a, user, comment))

    def snooze_many(self, alert_ids: Iterable[str], user: str,
                    until: datetime) -> list[ActionResult]:
        return self._each(alert_ids, lambda a: self.snooze(a, user, until))

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
