"""Alerts and their lifecycle: active -> acknowledged -> resolved (-> active on recurrence).

``version`` is the optimistic-lock counter the store checks, so two support
consoles acknowledging at once cannot both win.

A recurrence reopens the alert under the same id and its fields describe the
new occurrence; what happened before (who acknowledged or resolved it and why)
lives on as :class:`AlertEvent` history, which the store writes with each
change (``history_of``), so it can never be erased by a reopening.
"""

from __future__ import annotations

import enum
import math
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from core.errors import IllegalTransition, ValidationError
from core.model.ids import validate_device_id
from core.model.timeutil import require_aware, utcnow


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls(value)
        except ValueError:
            raise ValidationError(
                f"severity {value!r} is not one of: info, warning, critical"
            ) from None


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertState(enum.StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"

    @classmethod
    def parse(cls, value: str) -> AlertState:
        try:
            return cls(value)
        except ValueError:
            raise ValidationError(
                f"alert state {value!r} is not one of: active, acknowledged, resolved"
            ) from None


def new_alert_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Alert:
    device_id: str
    rule_id: str
    severity: Severity
    message: str
    value: float | None = None
    alert_id: str = field(default_factory=new_alert_id)
    state: AlertState = AlertState.ACTIVE
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    ack_comment: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    snoozed_until: datetime | None = None
    version: int = 1
    resolve_comment: str | None = None  # why it was resolved (a person's words)

    def __post_init__(self) -> None:
        validate_device_id(self.device_id)
        if not self.rule_id:
            raise ValidationError(f"alert on {self.device_id}: rule id must not be empty")
        if not isinstance(self.severity, Severity):
            object.__setattr__(self, "severity", Severity.parse(str(self.severity)))
        if not isinstance(self.state, AlertState):
            object.__setattr__(self, "state", AlertState.parse(str(self.state)))
        if self.value is not None and not math.isfinite(self.value):
            raise ValidationError(
                f"alert on {self.device_id}: triggering value {self.value!r} is not a finite number"
            )
        if self.version < 1:
            raise ValidationError(f"alert version must be >= 1, got {self.version}")
        for name in ("created_at", "updated_at", "acknowledged_at", "resolved_at", "snoozed_until"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, require_aware(value, name))

    @property
    def is_open(self) -> bool:
        return self.state is not AlertState.RESOLVED

    def is_snoozed(self, at: datetime | None = None) -> bool:
        return self.snoozed_until is not None and (at or utcnow()) < self.snoozed_until

    def acknowledge(self, user: str, comment: str = "", *, at: datetime | None = None) -> Alert:
        if not user:
            raise ValidationError("acknowledging needs the name of the person who does it")
        if self.state is not AlertState.ACTIVE:
            by = f" by {self.acknowledged_by}" if self.acknowledged_by else ""
            raise IllegalTransition(
                f"alert {self.alert_id} is already {self.state.value}{by}; only active alerts "
                "can be acknowledged"
            )
        now = at or utcnow()
        return replace(
            self,
            state=AlertState.ACKNOWLEDGED,
            acknowledged_at=now,
            acknowledged_by=user,
            ack_comment=comment or None,
            updated_at=now,
            version=self.version + 1,
        )

    def resolve(self, user: str, comment: str = "", *, at: datetime | None = None) -> Alert:
        """``user`` is a person or ``"system"`` for auto-resolve when the condition clears;
        ``comment`` says why (kept in the history when the alert recurs)."""
        if not user:
            raise ValidationError("resolving needs the name of the person (or 'system')")
        if self.state is AlertState.RESOLVED:
            raise IllegalTransition(
                f"alert {self.alert_id} was already resolved by {self.resolved_by or 'someone'}"
            )
        now = at or utcnow()
        return replace(
            self,
            state=AlertState.RESOLVED,
            resolved_at=now,
            resolved_by=user,
            resolve_comment=comment or None,
            snoozed_until=None,
            updated_at=now,
            version=self.version + 1,
        )

    def reopen(self, value: float | None, message: str, *, at: datetime | None = None) -> Alert:
        """Recurrence of the same rule on the same device reopens rather than duplicating.

        The fields start over for the new occurrence; the store records the
        reopening, with the resolution it follows, in the alert's history."""
        if self.state is not AlertState.RESOLVED:
            raise IllegalTransition(f"alert {self.alert_id} is {self.state.value}, not resolved")
        now = at or utcnow()
        return replace(
            self,
            state=AlertState.ACTIVE,
            value=value,
            message=message,
            acknowledged_at=None,
            acknowledged_by=None,
            ack_comment=None,
            resolved_at=None,
            resolved_by=None,
            resolve_comment=None,
            snoozed_until=None,
            updated_at=now,
            version=self.version + 1,
        )

    def snooze(self, until: datetime, *, at: datetime | None = None) -> Alert:
        now = at or utcnow()
        until = require_aware(until, "snoozed_until")
        if self.state is AlertState.RESOLVED:
            raise IllegalTransition(f"alert {self.alert_id} is resolved; nothing to snooze")
        if until <= now:
            raise ValidationError("snooze must end in the future")
        return replace(self, snoozed_until=until, updated_at=now, version=self.version + 1)


class AlertEventKind(enum.StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"
    REOPENED = "reopened"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One change in an alert's life. ``actor`` is a person or ``"system"``
    (the alert engine); empty when the change does not say who (a snooze:
    the audit trail has the person)."""

    alert_id: str
    at: datetime
    kind: AlertEventKind
    actor: str = ""
    comment: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    version: int = 1

    def describe(self) -> str:
        """The history line a person reads ("resolved by maria: “replaced the fan”")."""
        by = f" by {self.actor}" if self.actor else ""
        if self.kind is AlertEventKind.RAISED:
            return "raised"  # always by the alert engine
        text = f"{self.kind.value}{by}"
        if self.kind is AlertEventKind.REOPENED:
            value = self.details.get("value")
            text = f"reopened{by}" + (
                f" at value {value:g}" if isinstance(value, int | float) else "")
            previous = self.details.get("previous_resolved_by")
            if previous:
                text += f"; it had been resolved by {previous}"
                if self.details.get("previous_comment"):
                    text += f": “{self.details['previous_comment']}”"
            return text
        if self.kind is AlertEventKind.SNOOZED and self.details.get("until"):
            text += f" until {str(self.details['until'])[:16].replace('T', ' ')}"
        if self.comment:
            text += f": “{self.comment}”"
        return text


def history_of(old: Alert | None, new: Alert) -> list[AlertEvent]:
    """The events a change from ``old`` (None: a new alert) to ``new`` makes.

    Derived from the two states rather than told by each caller, so every
    writer (the alert engine, a console, the CLI, another backend) leaves the
    same history."""
    def event(kind: AlertEventKind, at: datetime, actor: str = "", comment: str = "",
              **details: Any) -> AlertEvent:
        return AlertEvent(new.alert_id, at, kind, actor, comment or "",
                          {k: v for k, v in details.items() if v is not None}, new.version)

    if old is None:
        return [event(AlertEventKind.RAISED, new.created_at, "system",
                      value=new.value, message=new.message)]
    out: list[AlertEvent] = []
    if old.state is AlertState.RESOLVED and new.state is not AlertState.RESOLVED:
        # Who reopened is not part of the alert: the engine on a recurrence,
        # a person through the service (whose audit entry names them).
        out.append(event(
            AlertEventKind.REOPENED, new.updated_at, "", value=new.value,
            message=new.message, previous_resolved_by=old.resolved_by,
            previous_resolved_at=old.resolved_at.isoformat() if old.resolved_at else None,
            previous_comment=old.resolve_comment))
    if new.state is AlertState.ACKNOWLEDGED and old.state is not AlertState.ACKNOWLEDGED:
        out.append(event(AlertEventKind.ACKNOWLEDGED, new.acknowledged_at or new.updated_at,
                         new.acknowledged_by or "", new.ack_comment or ""))
    if new.state is AlertState.RESOLVED and old.state is not AlertState.RESOLVED:
        out.append(event(AlertEventKind.RESOLVED, new.resolved_at or new.updated_at,
                         new.resolved_by or "", new.resolve_comment or ""))
    if (new.snoozed_until is not None and new.snoozed_until != old.snoozed_until
            and new.state is not AlertState.RESOLVED):
        out.append(event(AlertEventKind.SNOOZED, new.updated_at,
                         until=new.snoozed_until.isoformat()))
    return out
