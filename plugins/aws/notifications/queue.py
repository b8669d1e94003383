"""The notification queue's message: one alert raised or resolved, as JSON.

The stream consumer (Kinesis) puts one message per alert change on the SQS
queue ``iot-notifications-{stage}``; the notifications Lambda reads them.
The message is a small, stable contract between the two, versionless on
purpose (new fields may be added; readers ignore what they do not know)::

    {"kind": "alert.raised" | "alert.resolved",
     "alert": {"alert_id", "device_id", "organization_id", "severity", "rule_id",
               "message", "state", "created_at", "resolved_at"},
     "sent_at": "2026-01-02T03:04:05.678000+00:00"}

Times are ISO-8601 with their zone (UTC when written here); ``resolved_at``
is null while the alert is open and ``organization_id`` is "" for a device
that belongs to no organization.

Why parse strictly: a message that cannot be understood can never be
delivered, so the reader must know it at once (and drop it, counted), rather
than fail halfway through building an e-mail and have SQS redeliver it
until it lands in the dead-letter queue. :class:`MalformedNotification`
names the field and what was wrong with it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from core.errors import ValidationError
from core.model.alert import Alert, AlertState, Severity
from core.model.ids import validate_device_id
from core.model.timeutil import utcnow
from core.ports.notifications import AlertNotification, NotificationKind, NotifiedAlert

# SQS takes at most 256 KiB a message; an alert is far below, so a bigger
# body is not one of ours.
MAX_MESSAGE_BYTES = 256 * 1024

_REQUIRED_TEXT = ("alert_id", "device_id", "rule_id", "message")


class MalformedNotification(ValueError):
    """A queue message that is not a notification this code can deliver."""


def to_message(notification: AlertNotification) -> dict[str, Any]:
    a = notification.alert
    return {
        "kind": notification.kind.value,
        "alert": {
            "alert_id": a.alert_id,
            "device_id": a.device_id,
            "organization_id": a.organization_id,
            "severity": a.severity.value,
            "rule_id": a.rule_id,
            "message": a.message,
            "state": a.state.value,
            "created_at": a.created_at.isoformat(),
            "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
        },
        "sent_at": notification.sent_at.isoformat(),
    }


def encode(notification: AlertNotification) -> str:
    return json.dumps(to_message(notification), ensure_ascii=False, separators=(",", ":"))


def parse_notification(body: str | bytes) -> AlertNotification:
    """The notification in a queue message's body; raises
    :class:`MalformedNotification` naming what is wrong."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise MalformedNotification(
            f"notification message is {len(body)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedNotification(f"notification message is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise MalformedNotification(
            f"notification message must be a JSON object, got {type(doc).__name__}")
    kind_text = doc.get("kind")
    try:
        kind = NotificationKind(str(kind_text))
    except ValueError:
        raise MalformedNotification(
            f"notification message: kind {kind_text!r} is not one of: "
            + ", ".join(k.value for k in NotificationKind)) from None
    alert = doc.get("alert")
    if not isinstance(alert, dict):
        raise MalformedNotification(
            "notification message: 'alert' must be an object, got "
            f"{type(alert).__name__ if alert is not None else 'nothing'}")
    return AlertNotification(kind=kind, alert=_parse_alert(alert),
                             sent_at=_time(doc, "sent_at", "notification message"))


def _parse_alert(doc: dict[str, Any]) -> NotifiedAlert:
    where = "notification message: alert"
    for name in _REQUIRED_TEXT:
        value = doc.get(name)
        if not isinstance(value, str) or (name != "message" and not value):
            raise MalformedNotification(
                f"{where}.{name} must be non-empty text, got {value!r}")
    organization = doc.get("organization_id", "")
    if organization is None:
        organization = ""
    if not isinstance(organization, str):
        raise MalformedNotification(f"{where}.organization_id must be text, got {organization!r}")
    try:
        validate_device_id(doc["device_id"])
    except ValidationError as exc:
        raise MalformedNotification(f"{where}.device_id: {exc}") from None
    try:
        severity = Severity.parse(str(doc.get("severity")))
        state = AlertState.parse(str(doc.get("state")))
    except ValidationError as exc:
        raise MalformedNotification(f"{where}: {exc}") from None
    resolved = None if doc.get("resolved_at") is None else _time(doc, "resolved_at", where)
    return NotifiedAlert(alert_id=doc["alert_id"], device_id=doc["device_id"],
                         organization_id=organization, severity=severity,
                         rule_id=doc["rule_id"], message=doc["message"], state=state,
                         created_at=_time(doc, "created_at", where), resolved_at=resolved)


def _time(doc: dict[str, Any], name: str, where: str) -> datetime:
    value = doc.get(name)
    if not isinstance(value, str):
        raise MalformedNotification(f"{where}.{name} must be an ISO-8601 time, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedNotification(
            f"{where}.{name} {value!r} is not an ISO-8601 time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise MalformedNotification(f"{where}.{name} {value!r} carries no time zone")
    return parsed


def queue_name(stage: str) -> str:
    """``iot-notifications-{stage}``, named as the seed names every resource."""
    return f"iot-notifications-{stage}"


def dead_letter_queue_name(stage: str) -> str:
    return f"iot-notifications-dlq-{stage}"


# A message the Lambda failed this many times (SES throttled it on every try)
# moves to the dead-letter queue instead of circling for ever.
MAX_RECEIVES = 5


def create_queue(sqs_client: Any, stage: str) -> str:
    """Create the queue and its dead-letter queue for ``stage`` (the sandbox,
    the tests; on AWS the Serverless stack declares them); an existing queue
    with the same attributes is kept. Returns the queue's URL."""
    dlq_url = sqs_client.create_queue(QueueName=dead_letter_queue_name(stage),
                                      Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    dlq_arn = sqs_client.get_queue_attributes(
        QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)})
    # 6x the Lambda's timeout, as AWS advises for an SQS event source
    return str(sqs_client.create_queue(
        QueueName=queue_name(stage),
        Attributes={"VisibilityTimeout": "180", "RedrivePolicy": redrive})["QueueUrl"])


def queue_url(sqs_client: Any, stage: str) -> str:
    """The stage's queue URL (GetQueueUrl), for a producer configured by stage only."""
    return str(sqs_client.get_queue_url(QueueName=queue_name(stage))["QueueUrl"])


class AlertNotificationQueue:
    """The producer: puts one message per alert change on the queue.

    ``sqs_client`` is a boto3 SQS client; ``queue_url`` the queue's URL
    (GetQueueUrl of ``iot-notifications-{stage}``)."""

    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._url = queue_url

    def send(self, kind: NotificationKind | str, alert: Alert | NotifiedAlert,
             organization_id: str = "", *, sent_at: datetime | None = None) -> str:
        """Queue a notification that ``alert`` was raised or resolved; returns
        SQS's message id. ``organization_id`` is the device's organization
        (core's Alert does not carry it; ignored for a NotifiedAlert)."""
        try:
            kind = NotificationKind(kind)
        except ValueError:
            raise ValueError(f"notification kind {kind!r} is not one of: "
                             + ", ".join(k.value for k in NotificationKind)) from None
        notified = (alert if isinstance(alert, NotifiedAlert)
                    else NotifiedAlert.from_alert(alert, organization_id))
        return self.send_notification(
            AlertNotification(kind=kind, alert=notified, sent_at=sent_at or utcnow()))

    def send_notification(self, notification: AlertNotification) -> str:
        answer = self._sqs.send_message(
            QueueUrl=self._url, MessageBody=encode(notification),
            # readable in the console's SQS view and usable by subscription filters
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": notification.kind.value},
                "severity": {"DataType": "String",
                             "StringValue": notification.alert.severity.value},
            })
        return str(answer["MessageId"])
