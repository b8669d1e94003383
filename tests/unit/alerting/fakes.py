"""Small in-memory stand-ins for the alert ports, with the same version contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from core.errors import ConcurrentModification, NotFound, ValidationError
from core.model import Alert, AlertState, Device, DeviceStatus, Reading, Severity
from core.ports.alerts import AlertQuery, AlertStore

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class MemoryAlertStore(AlertStore):
    def __init__(self) -> None:
        self.rows: dict[str, Alert] = {}

    def add(self, alert: Alert) -> None:
        if alert.alert_id in self.rows:
            raise ValidationError(f"alert {alert.alert_id} already exists")
        self.rows[alert.alert_id] = alert

    def get(self, alert_id: str) -> Alert:
        try:
            return self.rows[alert_id]
        except KeyError:
            raise NotFound(f"alert {alert_id!r} does not exist") from None

    def save(self, alert: Alert) -> None:
        current = self.get(alert.alert_id)
        if current.version != alert.version - 1:
            who = current.resolved_by or current.acknowledged_by
            raise ConcurrentModification(f"alert {alert.alert_id} changed by {who}",
                                         changed_by=who)
        self.rows[alert.alert_id] = alert

    def list(self, query: AlertQuery | None = None) -> list[Alert]:
        q = query or AlertQuery()
        out = [a for a in self.rows.values()
               if (not q.device_id or a.device_id == q.device_id)
               and (not q.states or a.state in q.states)
               and (not q.severities or a.severity in q.severities)]
        out = sorted(out, key=lambda a: a.created_at, reverse=True)[q.offset:]
        return out if q.limit is None else out[:q.limit]

    def open_alert_for(self, device_id: str, rule_id: str) -> Alert | None:
        return next((a for a in self.list(AlertQuery(device_id=device_id))
                     if a.rule_id == rule_id and a.state is not AlertState.RESOLVED), None)

    def counts_by_severity(self, *, open_only: bool = True) -> dict[Severity, int]:
        counts = dict.fromkeys(Severity, 0)
        for a in self.rows.values():
            if not open_only or a.is_open:
                counts[a.severity] += 1
        return counts

    def open_counts_by_device(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for a in self.rows.values():
            if a.is_open:
                counts[a.device_id] = counts.get(a.device_id, 0) + 1
        return counts


@dataclass
class MemoryAudit:
    entries: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)

    def append(self, actor: str, action: str, subject: str,
               details: dict[str, Any] | None = None) -> None:
        self.entries.append((actor, action, subject, details or {}))


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


def device(device_id: str = "pump-1", **kwargs: Any) -> Device:
    kwargs.setdefault("status", DeviceStatus.ONLINE)
    return Device(device_id, **kwargs)


def readings(metric: str, values: list[float], *, start: datetime = T0, step_s: float = 10,
             device_id: str = "pump-1") -> list[Reading]:
    return [Reading(device_id, metric, start + timedelta(seconds=i * step_s), v)
            for i, v in enumerate(values)]
