"""What the alert page's buttons do, behind one small adapter.

``AlertActions`` calls ``AlertService`` with the person's Actor: the role
check, the versioned save and the audit entry all happen there, never here.
Every call is blocking and runs on a worker thread; results are per alert so a
conflict on one does not hide the success of the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.errors import ConcurrentModification, IllegalTransition, NotFound, SmartIotError
from core.model import Alert, AlertState
from core.model.roles import Actor
from core.ports.backend import Backend
from core.services.alerting.service import AlertService

from ._common import short_time


@dataclass(frozen=True, slots=True)
class ActionResult:
    alert_id: str
    action: str
    ok: bool
    alert: Alert | None  # the alert as stored afterwards (None if it vanished)
    message: str = ""


def conflict_text(current: Alert | None, action: str) -> str:
    """"already acknowledged by maria at 10:42" from the stored state."""
    if current is None:
        return "the alert no longer exists"
    if current.state is AlertState.RESOLVED:
        who = current.resolved_by or "someone"
        return f"already resolved by {who} at {short_time(current.resolved_at)}"
    if current.state is AlertState.ACKNOWLEDGED and action == "acknowledge":
        who = current.acknowledged_by or "someone"
        return f"already acknowledged by {who} at {short_time(current.acknowledged_at)}"
    who = current.acknowledged_by or current.resolved_by
    by = f" by {who}" if who else ""
    return f"changed{by} at {short_time(current.updated_at)} in the meantime; try again"


class AlertActions:
    def __init__(self, backend: Backend, actor: Actor) -> None:
        self.backend = backend
        self.actor = actor
        self.service = AlertService(backend.alerts, backend.audit, rules=backend.rules)

    # ---------------------------------------------------------- per alert
    def acknowledge(self, alert: Alert, comment: str = "") -> ActionResult:
        return self._run(alert, "acknowledge", comment=comment)

    def resolve(self, alert: Alert, comment: str = "") -> ActionResult:
        return self._run(alert, "resolve", comment=comment)

    def snooze(self, alert: Alert, until: datetime) -> ActionResult:
        return self._run(alert, "snooze", until=until)

    def run_many(self, alerts: list[Alert], action: str, **kwargs: Any) -> list[ActionResult]:
        return [self._run(a, action, **kwargs) for a in alerts]

    # ---------------------------------------------------------- internals
    def _run(self, alert: Alert, action: str, *, comment: str = "",
             until: datetime | None = None) -> ActionResult:
        try:
            self._call(alert, action, comment, until)
        except (ConcurrentModification, IllegalTransition) as exc:
            current = self._reload(alert.alert_id)
            return ActionResult(alert.alert_id, action, False, current,
                                conflict_text(current, action) or str(exc))
        except NotFound:
            return ActionResult(alert.alert_id, action, False, None, "the alert no longer exists")
        except SmartIotError as exc:
            return ActionResult(alert.alert_id, action, False, self._reload(alert.alert_id),
                                str(exc))
        return ActionResult(alert.alert_id, action, True, self._reload(alert.alert_id))

    def _reload(self, alert_id: str) -> Alert | None:
        try:
            return self.backend.alerts.get(alert_id)
        except NotFound:
            return None

    def _call(self, alert: Alert, action: str, comment: str, until: datetime | None) -> None:
        if action == "acknowledge":
            self.service.acknowledge(alert.alert_id, self.actor, comment)
        elif action == "resolve":
            self.service.resolve(alert.alert_id, self.actor, comment)
        elif action == "reopen":
            self.service.reopen(alert.alert_id, self.actor, comment)
        elif action == "snooze":
            if until is None:
                raise ValueError("snooze needs an end time")
            self.service.snooze(alert.alert_id, self.actor, until)
        else:
            raise ValueError(f"unknown alert action {action!r}")
