"""What the alert page's buttons do, behind one small adapter.

``AlertActions`` uses the alert engine's ``AlertService`` (version checks,
audit) when it is installed, and otherwise applies the domain transitions and
saves through the store, so the page never knows which one it talks to.
Every call is blocking and runs on a worker thread; results are per alert so a
conflict on one does not hide the success of the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.errors import ConcurrentModification, IllegalTransition, NotFound, SmartIotError
from core.model import Alert, AlertState
from core.ports.backend import Backend

from ._common import short_time

log = logging.getLogger(__name__)


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


def _audit_of(backend: Backend) -> Any:
    return backend.audit


def _find_alert_service(backend: Backend) -> Any:
    """The backend's AlertService, else one built over its store, else None."""
    existing = getattr(backend, "alert_service", None)
    if existing is not None:
        return existing
    try:
        from core.services.alerting.service import AlertService
    except ImportError:
        return None
    try:
        return AlertService(backend.alerts, _audit_of(backend))
    except Exception:
        log.warning("AlertService could not be built; saving through the store", exc_info=True)
        return None


class AlertActions:
    def __init__(self, backend: Backend, user: str, *, use_service: bool = True) -> None:
        self.backend = backend
        self.user = user or "operator"
        self.service = _find_alert_service(backend) if use_service else None

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
            if self.service is not None:
                self._via_service(alert, action, comment, until)
            else:
                self._via_store(alert, action, comment, until)
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

    def _via_service(self, alert: Alert, action: str, comment: str,
                     until: datetime | None) -> None:
        if action == "snooze":
            if until is None:
                raise ValueError("snooze needs an end time")
            self.service.snooze(alert.alert_id, self.user, until)
        else:
            getattr(self.service, action)(alert.alert_id, self.user, comment)

    def _via_store(self, alert: Alert, action: str, comment: str,
                   until: datetime | None) -> None:
        if action == "acknowledge":
            changed = alert.acknowledge(self.user, comment)
        elif action == "resolve":
            changed = alert.resolve(self.user)
        elif action == "snooze":
            if until is None:
                raise ValueError("snooze needs an end time")
            changed = alert.snooze(until)
        else:
            raise ValueError(f"unknown alert action {action!r}")
        self.backend.alerts.save(changed)
        audit = _audit_of(self.backend)
        if audit is not None:
            details: dict[str, Any] = {"version": changed.version,
                                       "device_id": alert.device_id}
            if comment:
                details["comment"] = comment
            if until is not None:
                details["until"] = until.isoformat()
            try:
                audit.append(self.user, f"alert.{action}", alert.alert_id, details)
            except Exception:
                log.warning("audit entry for %s not written", alert.alert_id, exc_info=True)
