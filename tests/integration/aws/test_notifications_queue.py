"""The notification queue's message (plugins/aws/notifications/queue.py): what
the stream consumer writes to SQS is what the notifications Lambda reads
back, through moto's real SQS; and a message that is not one of ours is
refused with an error naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from core.model.alert import Alert, AlertState, Severity
from core.ports.notifications import NotificationKind
from plugins.aws.notifications.queue import (
    AlertNotificationQueue,
    MalformedNotification,
    create_queue,
    parse_notification,
    queue_url,
)
from tests.integration.aws.conftest import AwsSandbox

RAISED_AT = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def _alert(**changes: Any) -> Alert:
    fields: dict[str, Any] = {"device_id": "pump-7", "rule_id": "temp-high",
                              "severity": Severity.CRITICAL, "message": "temperature 92.5 > 90",
                              "value": 92.5, "created_at": RAISED_AT}
    fields.update(changes)
    return Alert(**fields)


def _receive(sqs: Any, url: str) -> list[dict[str, Any]]:
    answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                 MessageAttributeNames=["All"])
    return list(answer.get("Messages", []))


def test_a_raised_and_a_resolved_alert_cross_sqs_as_the_documented_json(aws: AwsSandbox) -> None:
    sqs = aws.client("sqs")
    url = create_queue(sqs, aws.stage)
    queue = AlertNotificationQueue(sqs, url)
    raised = _alert()
    resolved = raised.resolve("bob", "fan replaced", at=datetime(2026, 3, 1, 9, tzinfo=UTC))

    queue.send("alert.raised", raised, "acme", sent_at=datetime(2026, 3, 1, 8, 30, 1, tzinfo=UTC))
    queue.send(NotificationKind.RESOLVED, resolved, "acme")

    messages = _receive(sqs, url)
    assert len(messages) == 2
    bodies = [json.loads(m["Body"]) for m in messages]
    first = next(b for b in bodies if b["kind"] == "alert.raised")
    assert first == {
        "kind": "alert.raised",
        "alert": {"alert_id": raised.alert_id, "device_id": "pump-7", "organization_id": "acme",
                  "severity": "critical", "rule_id": "temp-high",
                  "message": "temperature 92.5 > 90", "state": "active",
                  "created_at": "2026-03-01T08:30:00+00:00", "resolved_at": None},
        "sent_at": "2026-03-01T08:30:01+00:00"}
    attributes = {m["MessageAttributes"]["kind"]["StringValue"]:
                  m["MessageAttributes"]["severity"]["StringValue"] for m in messages}
    assert attributes == {"alert.raised": "critical", "alert.resolved": "critical"}

    parsed = {n.kind: n for n in (parse_notification(m["Body"]) for m in messages)}
    back = parsed[NotificationKind.RESOLVED].alert
    assert back.state is AlertState.RESOLVED and back.organization_id == "acme"
    assert back.resolved_at == datetime(2026, 3, 1, 9, tzinfo=UTC)
    assert parsed[NotificationKind.RESOLVED].occurred_at == datetime(2026, 3, 1, 9, tzinfo=UTC)
    assert parsed[NotificationKind.RAISED].alert.severity is Severity.CRITICAL
    assert parsed[NotificationKind.RAISED].occurred_at == RAISED_AT


def test_the_queue_has_a_dead_letter_queue_so_a_failing_message_cannot_circle_for_ever(
        aws: AwsSandbox) -> None:
    sqs = aws.client("sqs")
    url = create_queue(sqs, aws.stage)
    assert create_queue(sqs, aws.stage) == url  # a second start keeps it
    assert queue_url(sqs, aws.stage) == url
    redrive = json.loads(sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(f"iot-notifications-dlq-{aws.stage}")
    assert int(redrive["maxReceiveCount"]) == 5


def _good() -> dict[str, Any]:
    return {"kind": "alert.raised",
            "alert": {"alert_id": "a-1", "device_id": "pump-7", "organization_id": "acme",
                      "severity": "warning", "rule_id": "r", "message": "m", "state": "active",
                      "created_at": "2026-03-01T08:30:00Z", "resolved_at": None},
            "sent_at": "2026-03-01T08:30:00Z"}


def _with(path: str, value: Any) -> str:
    doc = _good()
    target: dict[str, Any] = doc
    *parents, last = path.split(".")
    for p in parents:
        target = target[p]
    if value is _DROP:
        del target[last]
    else:
        target[last] = value
    return json.dumps(doc)


_DROP = object()


@pytest.mark.parametrize(("body", "named"), [
    ("not json {", "not JSON"),
    ("[1, 2]", "must be a JSON object, got list"),
    (_with("kind", "alert.exploded"), "kind 'alert.exploded' is not one of"),
    (_with("alert", _DROP), "'alert' must be an object, got nothing"),
    (_with("alert.severity", "urgent"), "severity 'urgent' is not one of"),
    (_with("alert.state", "open"), "alert state 'open' is not one of"),
    (_with("alert.device_id", "pump 7/../x"), "alert.device_id"),
    (_with("alert.alert_id", ""), "alert.alert_id must be non-empty text"),
    (_with("alert.created_at", "yesterday"), "alert.created_at 'yesterday' is not an ISO-8601"),
    (_with("alert.created_at", "2026-03-01T08:30:00"), "carries no time zone"),
    (_with("alert.organization_id", 7), "alert.organization_id must be text"),
    (_with("sent_at", _DROP), "sent_at must be an ISO-8601 time, got None"),
    ("x" * (256 * 1024 + 1), "the limit is"),
])
def test_a_message_that_is_not_a_notification_is_refused_naming_the_field(
        body: str, named: str) -> None:
    with pytest.raises(MalformedNotification, match=named.replace("(", r"\(")):
        parse_notification(body)


def test_zulu_times_and_a_missing_organization_are_accepted() -> None:
    n = parse_notification(_with("alert.organization_id", None))
    assert n.alert.organization_id == ""
    assert n.alert.created_at == datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
