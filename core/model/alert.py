"""Alerts and their lifecycle: active -> acknowledged -> resolved (-> active on recurrence).

``version`` is the optimistic-lock counter the store checks, so two support
consoles acknowledging at once cannot both win.
"""

from __future__ import annotations

import enum
import math
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

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

    def resolve(self, user: str, *, at: datetime | None = None) -> Alert:
        """``user`` is a person or ``"system"`` for auto-resolve when the condition clears."""
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
            snoozed_until=None,
            updated_at=now,
            version=self.version + 1,
        )

    def reopen(self, value: float | None, message: str, *, at: datetime | None = None) -> Alert:
        """Recurrence of the same rule on the same device reopens rather than duplicating."""
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
