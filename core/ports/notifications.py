"""Notification port: tell people about alerts outside the console.

An alert that is raised or resolved becomes an :class:`AlertNotification`;
a :class:`NotificationChannel` delivers one to a set of recipients. E-mail
(SES) is the first channel; push (FCM) or SNS are more of the same port, so
whoever decides *who* hears of an alert (subscriptions) never knows *how*.

A channel tells the caller whether a failure is worth retrying
(:class:`TransientDeliveryError`: throttling, an outage) or not
(:class:`PermanentDeliveryError`: a refused sender or address). The
difference decides whether a queue redelivers the message or drops it: a
permanent error retried forever would block every later alert behind it.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from core.model.alert import Alert, AlertState, Severity
from core.model.timeutil import require_aware


class NotificationKind(enum.StrEnum):
    RAISED = "alert.raised"
    RESOLVED = "alert.resolved"


@dataclass(frozen=True, slots=True)
class NotifiedAlert:
    """What a notification says about an alert: the fields a person needs to
    act on it, plus the organization (which core's Alert does not carry; the
    stores derive it from the device) so it can be routed to that
    organization's subscribers."""

    alert_id: str
    device_id: str
    organization_id: str  # "" for a device that belongs to no organization
    severity: Severity
    rule_id: str
    message: str
    state: AlertState
    created_at: datetime
    resolved_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "created_at", require_aware(self.created_at, "created_at"))
        if self.resolved_at is not None:
            object.__setattr__(self, "resolved_at",
                               require_aware(self.resolved_at, "resolved_at"))

    @classmethod
    def from_alert(cls, alert: Alert, organization_id: str = "") -> NotifiedAlert:
        return cls(alert_id=alert.alert_id, device_id=alert.device_id,
                   organization_id=organization_id, severity=alert.severity,
                   rule_id=alert.rule_id, message=alert.message, state=alert.state,
                   created_at=alert.created_at, resolved_at=alert.resolved_at)


@dataclass(frozen=True, slots=True)
class AlertNotification:
    kind: NotificationKind
    alert: NotifiedAlert
    sent_at: datetime

    @property
    def occurred_at(self) -> datetime:
        """When what the notification reports happened (raised or resolved)."""
        if self.kind is NotificationKind.RESOLVED and self.alert.resolved_at is not None:
            return self.alert.resolved_at
        return self.alert.created_at


class DeliveryError(Exception):
    """A channel could not deliver a notification."""


class TransientDeliveryError(DeliveryError):
    """Worth trying again later (throttling, the service unreachable)."""


class PermanentDeliveryError(DeliveryError):
    """Trying again cannot help (a refused recipient, a bad request).

    ``refused`` names each recipient that did not get the notification and
    why; recipients not named in it did get it."""

    def __init__(self, message: str, refused: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.refused: dict[str, str] = dict(refused or {})


class NotificationChannel(ABC):
    """Delivers notifications by one medium (e-mail, push, SMS...)."""

    @abstractmethod
    def send(self, notification: AlertNotification, recipients: Sequence[str]) -> None:
        """Deliver ``notification`` to every recipient (addresses in the
        channel's own terms: e-mail addresses, device tokens...). Raises
        :class:`TransientDeliveryError` (stop: try the whole notification
        again later) or, once every recipient was tried,
        :class:`PermanentDeliveryError` naming those refused."""
