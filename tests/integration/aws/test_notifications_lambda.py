"""Alert e-mail end to end on moto's server: a notification put on the real
SQS queue by the producer, received as Lambda's event source mapping would,
handed to the notifications Lambda, and the e-mail read back from what
moto's SES recorded (GET {endpoint}/moto-api/data.json: real HTTP, no
in-process access to moto)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from core.model.alert import Alert, Severity
from core.ports.notifications import NotificationKind
from plugins.aws.dynamodb.tables import TABLES, create_tables
from plugins.aws.lambdas import environment as env
from plugins.aws.lambdas import notifications as lambda_module
from plugins.aws.notifications.queue import AlertNotificationQueue, create_queue
from plugins.aws.notifications.subscriptions import (
    FLEET,
    TABLE_ROLE,
    Subscription,
    SubscriptionStore,
)
from plugins.aws.settings import AwsSettings
from tests.integration.aws.conftest import AwsSandbox

RAISED_AT = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
CONSOLE = "https://console.example.com/api/v1"


@dataclass
class Pipeline:
    aws: AwsSandbox
    sqs: Any
    queue_url: str
    queue: AlertNotificationQueue
    subscriptions: SubscriptionStore
    sender: str

    def address(self, name: str) -> str:
        """An address unique to this test (moto's SES log is shared by the process)."""
        return f"{name}+{self.aws.stage}@example.com"

    def subscribe(self, organization: str, name: str, **options: Any) -> str:
        email = self.address(name)
        self.subscriptions.put(Subscription(organization, email, **options))
        return email

    def raise_alert(self, severity: Severity = Severity.CRITICAL, organization: str = "acme",
                    kind: NotificationKind = NotificationKind.RAISED, **changes: Any) -> Alert:
        alert = Alert(device_id=changes.pop("device_id", "pump-7"), rule_id="temp-high",
                      severity=severity, message="temperature 92.5 > 90", value=92.5,
                      created_at=RAISED_AT, **changes)
        self.queue.send(kind, alert, organization)
        return alert

    def deliver(self, expected: int | None = None) -> tuple[dict[str, Any], list[str]]:
        """Receive what is on the queue, run the Lambda on it and delete the
        records it did not report as failed (what the event source mapping
        does with ReportBatchItemFailures). Returns its answer and the
        message ids it was given."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
            AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        if expected is not None:
            assert len(messages) == expected
        answer = lambda_module.handler(sqs_event(messages, self.aws.region), None)
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
            else:  # the visibility timeout, elapsed: the message is back on the queue
                self.sqs.change_message_visibility(QueueUrl=self.queue_url,
                                                   ReceiptHandle=m["ReceiptHandle"],
                                                   VisibilityTimeout=0)
        return answer, [m["MessageId"] for m in messages]

    def emails_to(self, address: str) -> list[dict[str, Any]]:
        return [m for m in ses_messages(self.aws.endpoint_url)
                if address in m["destinations"].get("ToAddresses", [])]


def sqs_event(messages: list[dict[str, Any]], region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping hands the function."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}),
        "messageAttributes": {k: {"stringValue": v.get("StringValue"), "dataType": v["DataType"]}
                              for k, v in m.get("MessageAttributes", {}).items()},
        "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{region}:123456789012:iot-notifications",
        "awsRegion": region} for m in messages]}


def _moto_api(endpoint: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/{path}", method="GET" if body is None else "POST",
        data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(request, timeout=10) as answer:
        text = answer.read()
    return json.loads(text) if text else None


KEY_RESTORE = "s3::keyrestore"


def ses_messages(endpoint: str) -> list[dict[str, Any]]:
    """Every e-mail moto's SES accepted, from its model-state dump over HTTP
    (``/moto-api/data.json``, ``ses.Message``: source, subject, body,
    destinations).

    The dump reads every attribute of every model of the server; an S3 key's
    ``status`` advances a Glacier-restore state machine that fails (500) for
    keys whose bucket is gone — multipart parts, buckets other tests deleted
    in this process. Holding that machine still (moto's state manager, over
    HTTP too) while the dump is read keeps the answer independent of what
    other tests did; the previous setting is put back after."""
    previous = _moto_api(endpoint, f"state-manager/get-transition?model_name={KEY_RESTORE}")
    _moto_api(endpoint, "state-manager/set-transition", {
        "model_name": KEY_RESTORE, "transition": {"progression": "manual", "times": 10**9}})
    try:
        state = _moto_api(endpoint, "data.json")
    finally:
        _moto_api(endpoint, "state-manager/set-transition",
                  {"model_name": KEY_RESTORE, "transition": previous})
    return list(state.get("ses", {}).get("Message", []))


@pytest.fixture
def pipeline(aws: AwsSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    settings = AwsSettings(region=aws.region, stage=aws.stage, endpoint_url=aws.endpoint_url,
                           page_size=2)
    dynamodb = aws.client("dynamodb")
    create_tables(dynamodb, settings, tuple(t for t in TABLES if t.role == TABLE_ROLE))
    sqs = aws.client("sqs")
    url = create_queue(sqs, aws.stage)
    sender = f"alerts+{aws.stage}@fleet.example.com"
    aws.client("ses").verify_email_identity(EmailAddress=sender)
    for name, value in {env.STAGE: aws.stage, env.REGION: aws.region,
                        env.ENDPOINT_URL: aws.endpoint_url, env.NOTIFY_SENDER: sender,
                        env.CONSOLE_URL: CONSOLE}.items():
        monkeypatch.setenv(name, value)
    yield Pipeline(aws, sqs, url, AlertNotificationQueue(sqs, url),
                   SubscriptionStore(dynamodb, settings.table(TABLE_ROLE), page_size=2), sender)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """What the Lambda logged: messages with their structured fields."""
    return "\n".join(f"{r.getMessage()} {getattr(r, 'reason', '')}" for r in caplog.records
                     if r.name == lambda_module.SERVICE)


def emf_counts(out: str) -> dict[str, float]:
    """The metrics the Lambda logged in CloudWatch's embedded metric format."""
    totals: dict[str, float] = {}
    for line in out.splitlines():
        if not line.startswith("{") or "_aws" not in line:
            continue
        doc = json.loads(line)
        for metric in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            value = doc[metric["Name"]]
            totals[metric["Name"]] = totals.get(metric["Name"], 0) + (
                sum(value) if isinstance(value, list) else value)
    return totals


def test_a_critical_alert_on_the_queue_is_e_mailed_to_the_organizations_and_the_fleets_subscribers(
        pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    oncall = pipeline.subscribe("acme", "oncall", min_severity=Severity.WARNING)
    desk = pipeline.subscribe(FLEET, "desk", min_severity=Severity.CRITICAL)
    other = pipeline.subscribe("globex", "globex-ops", min_severity=Severity.INFO)
    alert = pipeline.raise_alert(Severity.CRITICAL, "acme")

    answer, _ = pipeline.deliver(expected=1)

    assert answer == {"batchItemFailures": []}
    [mail] = pipeline.emails_to(oncall)
    assert mail["source"] == pipeline.sender
    assert mail["subject"] == "[CRITICAL] pump-7: temperature 92.5 > 90 (rule temp-high)"
    for line in ("Device:        pump-7", "Organization:  acme", "Severity:      critical",
                 "Rule:          temp-high", "Message:       temperature 92.5 > 90",
                 "Raised at:     2026-03-01 08:30:00 UTC", f"Alert id:      {alert.alert_id}",
                 f"Open it: {CONSOLE}/alerts/{alert.alert_id}"):
        assert line in mail["body"]
    assert len(pipeline.emails_to(desk)) == 1  # the fleet-wide desk too, in its own e-mail
    assert pipeline.emails_to(other) == []  # another customer's team hears nothing
    assert emf_counts(capsys.readouterr().out)["NotificationsSent"] == 2
    # the message is gone from the queue: done, not redelivered
    assert pipeline.sqs.receive_message(QueueUrl=pipeline.queue_url,
                                        WaitTimeSeconds=0).get("Messages", []) == []


def test_subscribers_get_the_severities_and_events_they_asked_for_but_never_miss_a_critical_one(
        pipeline: Pipeline) -> None:
    everything = pipeline.subscribe("acme", "everything", min_severity=Severity.INFO)
    warnings = pipeline.subscribe("acme", "warnings", min_severity=Severity.WARNING,
                                  on_resolved=False)
    critical = pipeline.subscribe("acme", "critical", min_severity=Severity.CRITICAL)
    resolved_only = pipeline.subscribe("acme", "closures", min_severity=Severity.INFO,
                                       on_raised=False)

    pipeline.raise_alert(Severity.INFO, device_id="pump-info")
    pipeline.raise_alert(Severity.WARNING, device_id="pump-warn")
    pipeline.raise_alert(Severity.WARNING, kind=NotificationKind.RESOLVED,
                         device_id="pump-fixed", state="resolved", resolved_at=RAISED_AT)
    pipeline.raise_alert(Severity.CRITICAL, device_id="pump-fire")
    answer, _ = pipeline.deliver(expected=4)
    assert answer["batchItemFailures"] == []

    def devices(address: str) -> set[str]:
        return {m["subject"].split("] ")[1].split(":")[0] for m in pipeline.emails_to(address)}

    assert devices(everything) == {"pump-info", "pump-warn", "pump-fixed", "pump-fire"}
    assert devices(warnings) == {"pump-warn", "pump-fire"}  # no resolutions, nothing below
    assert devices(critical) == {"pump-fire"}
    # asked for resolutions only, yet a raised critical alert reaches it as well
    assert devices(resolved_only) == {"pump-fixed", "pump-fire"}
    [fixed] = [m for m in pipeline.emails_to(everything) if "pump-fixed" in m["subject"]]
    assert fixed["subject"].startswith("[resolved] pump-fixed")
    assert "Resolved at:   2026-03-01 08:30:00 UTC" in fixed["body"]


def test_a_malformed_message_is_logged_counted_and_acknowledged_the_rest_of_the_batch_delivered(
        pipeline: Pipeline, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    oncall = pipeline.subscribe("acme", "oncall")
    pipeline.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody='{"kind": "alert.raised"')
    pipeline.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody=json.dumps(
        {"kind": "alert.raised", "alert": {"device_id": "pump-7"}, "sent_at": "now"}))
    pipeline.raise_alert(Severity.CRITICAL)

    answer, _ = pipeline.deliver(expected=3)

    assert answer == {"batchItemFailures": []}  # not retried for ever
    assert len(pipeline.emails_to(oncall)) == 1
    assert emf_counts(capsys.readouterr().out)["MalformedNotifications"] == 2
    assert "dropped: it cannot be delivered notification message is not JSON" in logged(caplog)
    assert "alert.alert_id must be non-empty text, got None" in logged(caplog)
    assert pipeline.sqs.receive_message(QueueUrl=pipeline.queue_url,
                                        WaitTimeSeconds=0).get("Messages", []) == []


def test_an_unverified_sender_fails_only_its_records_which_are_delivered_once_it_is_verified(
        pipeline: Pipeline, aws: AwsSandbox, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """SES answers MessageRejected for a sender it has not verified: a set-up
    error every alert would hit, so the records are batch item failures
    (redelivered, then the dead-letter queue) and no alert is lost."""
    oncall = pipeline.subscribe("acme", "oncall")
    unverified = f"typo+{aws.stage}@fleet.example.com"
    monkeypatch.setenv(env.NOTIFY_SENDER, unverified)
    pipeline.raise_alert(Severity.CRITICAL, device_id="pump-1")
    pipeline.raise_alert(Severity.WARNING, device_id="pump-2")

    answer, ids = pipeline.deliver(expected=2)

    assert sorted(f["itemIdentifier"] for f in answer["batchItemFailures"]) == sorted(ids)
    assert pipeline.emails_to(oncall) == []
    assert emf_counts(capsys.readouterr().out)["NotificationsRetried"] == 2
    assert f"Email address not verified {unverified}" in logged(caplog)

    aws.client("ses").verify_email_identity(EmailAddress=unverified)  # the operator's fix
    answer, again = pipeline.deliver(expected=2)  # SQS redelivers the same messages
    assert sorted(again) == sorted(ids) and answer == {"batchItemFailures": []}
    assert {m["subject"].split(":")[0] for m in pipeline.emails_to(oncall)} == {
        "[CRITICAL] pump-1", "[WARNING] pump-2"}


def test_a_critical_alert_nobody_subscribed_to_is_an_error_and_counted_not_retried(
        pipeline: Pipeline, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    pipeline.subscribe("globex", "globex-ops", min_severity=Severity.INFO)
    pipeline.raise_alert(Severity.CRITICAL, "acme")
    pipeline.raise_alert(Severity.WARNING, "acme", device_id="pump-2")

    answer, _ = pipeline.deliver(expected=2)

    assert answer == {"batchItemFailures": []}
    counts = emf_counts(capsys.readouterr().out)
    assert counts["CriticalAlertsUnrouted"] == 1  # the warning reaching no one is fine
    assert any("reached nobody" in r.getMessage() and r.levelname == "ERROR"
               for r in caplog.records)


def test_an_alert_of_a_device_without_organization_reaches_the_fleet_wide_subscribers(
        pipeline: Pipeline) -> None:
    desk = pipeline.subscribe(FLEET, "desk")
    pipeline.raise_alert(Severity.WARNING, organization="")
    answer, _ = pipeline.deliver(expected=1)
    assert answer == {"batchItemFailures": []}
    [mail] = pipeline.emails_to(desk)
    assert "Organization:  (none)" in mail["body"]


def test_an_unreadable_subscriptions_table_fails_the_record_for_a_retry(
        pipeline: Pipeline, aws: AwsSandbox, capsys: pytest.CaptureFixture[str]) -> None:
    pipeline.raise_alert(Severity.CRITICAL)
    aws.client("dynamodb").delete_table(TableName=pipeline.subscriptions.table)

    answer, ids = pipeline.deliver(expected=1)

    assert [f["itemIdentifier"] for f in answer["batchItemFailures"]] == ids
    assert emf_counts(capsys.readouterr().out)["NotificationsRetried"] == 1
