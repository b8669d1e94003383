"""Reminders for critical alerts nobody has acknowledged.

A reminder is due every ``rule.escalate_after_s`` while a critical alert stays
active (not acknowledged, not snoozed). The clock starts at the alert's last
change (raise or reopen; for an active alert nothing else changes it) or at
the end of a snooze, whichever is later. At most one reminder per alert per
tick: a hub that was down for an hour sends one reminder, not twelve.
What was sent is kept in memory only, so a restarted hub reminds once more
about overdue alerts; that errs on the side of telling someone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from core.model import Alert, AlertRule, AlertState, Severity


@dataclass(frozen=True, slots=True)
class Reminder:
    alert: Alert
    rule: AlertRule
    overdue_s: float
    count: int
    """1 for the first reminder, 2 for the second, ..."""


class EscalationTracker:
    def __init__(self) -> None:
        self._sent: dict[str, tuple[datetime, int]] = {}

    def due(self, alerts: Iterable[Alert], rules: Mapping[str, AlertRule],
            now: datetime) -> list[Reminder]:
        reminders: list[Reminder] = []
        seen: set[str] = set()
        for alert in alerts:
            if alert.state is not AlertState.ACTIVE or alert.severity is not Severity.CRITICAL:
                continue
            rule = rules.get(alert.rule_id)
            if rule is None or not rule.enabled or rule.escalate_after_s is None:
                continue
            seen.add(alert.alert_id)
            if alert.is_snoozed(now):
                continue
            since = max(alert.updated_at, alert.snoozed_until or alert.updated_at)
            overdue = (now - since).total_seconds()
            count = int(overdue // rule.escalate_after_s)
            if count < 1:
                continue
            previous = self._sent.get(alert.alert_id)
            if previous is not None and previous[0] == since and previous[1] >= count:
                continue
            self._sent[alert.alert_id] = (since, count)
            reminders.append(Reminder(alert, rule, overdue, count))
        for alert_id in set(self._sent) - seen:
            del self._sent[alert_id]  # acknowledged or resolved: forget it
        return reminders
