"""One notification from the queue to the people subscribed to it.

Kept apart from the Lambda handler so the routing rules (subscriptions) and
the delivery (a channel: SES today, push or SNS tomorrow) can be read and
tested without an SQS event around them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from core.model.alert import Severity
from core.ports.notifications import (
    AlertNotification,
    NotificationChannel,
    NotificationKind,
    PermanentDeliveryError,
)
from plugins.aws.notifications.subscriptions import SubscriptionStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DispatchOutcome:
    delivered: tuple[str, ...] = ()
    refused: dict[str, str] = field(default_factory=dict)  # address -> why
    critical_unrouted: bool = False  # a raised critical alert nobody subscribed to


class NotificationDispatcher:
    def __init__(self, subscriptions: SubscriptionStore, channel: NotificationChannel) -> None:
        self._subscriptions = subscriptions
        self._channel = channel

    def dispatch(self, notification: AlertNotification) -> DispatchOutcome:
        """Send ``notification`` to its subscribers. A refused address is
        reported in the outcome (the rest still got it); a transient failure
        (core.ports.notifications.TransientDeliveryError) propagates so the
        queue delivers the message again."""
        recipients = self._subscriptions.recipients(notification)
        alert = notification.alert
        if recipients.critical_unrouted(notification):
            log.error("critical alert %s on %s (organization %r) reached nobody: no one is "
                      "subscribed to it; add one with `smartiot aws subscriptions add`",
                      alert.alert_id, alert.device_id, alert.organization_id)
            return DispatchOutcome(critical_unrouted=True)
        if not recipients.emails:
            return DispatchOutcome()
        try:
            self._channel.send(notification, recipients.emails)
        except PermanentDeliveryError as exc:
            log.error("%s", exc)
            delivered = tuple(e for e in recipients.emails if e not in exc.refused)
            unrouted = not delivered and _is_critical_raise(notification)
            if unrouted:
                log.error("critical alert %s on %s reached nobody: SES refused every "
                          "subscribed address", alert.alert_id, alert.device_id)
            return DispatchOutcome(delivered, exc.refused, critical_unrouted=unrouted)
        return DispatchOutcome(recipients.emails)


def _is_critical_raise(notification: AlertNotification) -> bool:
    return (notification.kind is NotificationKind.RAISED
            and notification.alert.severity is Severity.CRITICAL)
