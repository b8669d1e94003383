"""New and resolved alerts out of the stream consumer: to consoles over IoT
Core, and to the notification queue (SQS, then e-mail).

One message format for both, the notification queue's
(plugins/aws/notifications/queue.py): ``{"kind": "alert.raised" |
"alert.resolved", "alert": {...}, "sent_at": ...}``. Consoles subscribe to
``smartiot/{organization}/alerts`` (core.protocol.topics.alerts_topic), so a
person sees only their organization's alerts (an IoT policy on the topic).

A reopened alert is raised again (``alert.raised``). A snoozed alert's change
goes to consoles (their tables must stay true) but not to the queue: a
snooze is a person asking not to be told.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from core.model.timeutil import utcnow
from core.ports.notifications import AlertNotification, NotificationKind, NotifiedAlert
from core.protocol.topics import alerts_topic
from core.services.alerting.engine import AlertChange, ChangeKind
from plugins.aws.notifications.queue import encode, parse_notification, to_message


class NotificationSender(Protocol):
    def send_notification(self, notification: AlertNotification) -> str: ...


def notification_of(change: AlertChange, organization: str) -> AlertNotification:
    kind = (NotificationKind.RESOLVED if change.kind is ChangeKind.RESOLVED
            else NotificationKind.RAISED)
    return AlertNotification(kind=kind, alert=NotifiedAlert.from_alert(change.alert, organization),
                             sent_at=utcnow())


def outbox_entry(change: AlertChange, organization: str) -> dict[str, Any]:
    """An alert change as kept until published: the message (with its
    ``sent_at`` fixed at the first attempt), where it goes, whether to notify."""
    return {"message": to_message(notification_of(change, organization)),
            "organization": organization, "notify": change.notify}


class AlertFeed:
    """``iot_data``: a boto3 ``iot-data`` client; ``queue``: the notification
    queue's producer (``AlertNotificationQueue``)."""

    def __init__(self, iot_data: Any, queue: NotificationSender) -> None:
        self._iot = iot_data
        self._queue = queue
        self.published = 0
        self.queued = 0

    def send(self, change: AlertChange, organization: str) -> None:
        self.deliver(outbox_entry(change, organization))

    def deliver(self, entry: dict[str, Any]) -> None:
        """Publish one outbox entry to consoles and (unless snoozed) the queue."""
        notification = parse_notification(json.dumps(entry["message"]))
        self._iot.publish(topic=alerts_topic(str(entry["organization"])), qos=1,
                          payload=encode(notification).encode())
        self.published += 1
        if entry.get("notify", True):
            self._queue.send_notification(notification)
            self.queued += 1
