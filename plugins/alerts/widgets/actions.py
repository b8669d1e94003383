"""What the alert page's buttons do: one bulk use case per action.

The role check, the organization scope, the versioned save and the audit
entry all happen in the alerts service behind ``context.api.alerts``, never
here. Every call is blocking and runs on a worker thread; results are per
alert so a conflict on one does not hide the success of the others.
"""

from __future__ import annotations

from datetime import datetime

from core.ports.fleet_api.alerts import ActionResult, AlertsApi

PAST = {"acknowledge": "Acknowledged", "resolve": "Resolved", "snooze": "Snoozed",
        "reopen": "Reopened"}
PRESENT = {"acknowledge": "Acknowledging", "resolve": "Resolving", "snooze": "Snoozing",
           "reopen": "Reopening"}


def run_action(alerts: AlertsApi, action: str, alert_ids: list[str], *, comment: str = "",
               until: datetime | None = None) -> list[ActionResult]:
    if action == "acknowledge":
        return alerts.acknowledge_many(alert_ids, comment)
    if action == "resolve":
        return alerts.resolve_many(alert_ids, comment)
    if action == "reopen":
        return alerts.reopen_many(alert_ids, comment)
    if action == "snooze":
        if until is None:
            raise ValueError("snooze needs an end time")
        return alerts.snooze_many(alert_ids, until, comment)
    raise ValueError(f"unknown alert action {action!r}")


def summarise(action: str, results: list[ActionResult]) -> str:
    """"Acknowledged 3 alerts." and one line per alert that was not, naming
    its device and why ("pump-1: already acknowledged by maria at 10:42")."""
    ok = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    lines = []
    if ok:
        lines.append(f"{PAST.get(action, action)} {len(ok)} alert{'s' if len(ok) != 1 else ''}.")
    for r in failed:
        device = r.alert.device_id if r.alert is not None else r.alert_id[:8]
        lines.append(f"{device}: {r.error}")
    if len(lines) > 8:
        lines = [*lines[:7], f"… and {len(lines) - 7} more"]
    return "\n".join(lines)
