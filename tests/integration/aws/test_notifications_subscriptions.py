"""Subscriptions (who gets alert e-mail) on moto's DynamoDB, managed with
``smartiot aws subscriptions``, and how the SES channel sorts SES's errors
into retry and give-up (SES throttling through botocore's Stubber: moto
never throttles)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.stub import Stubber

from core.errors import ValidationError
from core.model.alert import AlertState, Severity
from core.ports.notifications import (
    AlertNotification,
    NotificationKind,
    NotifiedAlert,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from plugins.aws.dynamodb.tables import TABLES, create_tables
from plugins.aws.notifications.ses import SesEmailChannel
from plugins.aws.notifications.subscriptions import (
    TABLE_ROLE,
    Subscription,
    SubscriptionStore,
)
from plugins.aws.settings import AwsSettings
from tests.integration.aws.conftest import AwsSandbox, record_calls

AT = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def _notification(severity: Severity = Severity.CRITICAL,
                  organization: str = "acme") -> AlertNotification:
    return AlertNotification(NotificationKind.RAISED, NotifiedAlert(
        alert_id="a-1", device_id="pump-7", organization_id=organization, severity=severity,
        rule_id="temp-high", message="temperature 92.5 > 90", state=AlertState.ACTIVE,
        created_at=AT), sent_at=AT)


@pytest.fixture
def store(aws: AwsSandbox) -> SubscriptionStore:
    settings = AwsSettings(region=aws.region, stage=aws.stage, endpoint_url=aws.endpoint_url)
    client = aws.client("dynamodb")
    create_tables(client, settings, tuple(t for t in TABLES if t.role in (TABLE_ROLE, "audit")))
    return SubscriptionStore(client, settings.table(TABLE_ROLE), page_size=2)


def audit_entries(aws: AwsSandbox) -> list[tuple[str, str, str, dict[str, object]]]:
    from plugins.aws.dynamodb.audit import DynamoAuditTrail

    settings = AwsSettings(region=aws.region, stage=aws.stage, endpoint_url=aws.endpoint_url)
    return [(e.action, e.subject, e.actor, e.details)
            for e in DynamoAuditTrail(aws.client("dynamodb"), settings).entries()]


def test_recipients_are_found_by_two_paged_queries_never_a_scan(store: SubscriptionStore) -> None:
    for i in range(5):
        store.put(Subscription("acme", f"tech{i}@Example.COM", min_severity=Severity.INFO))
    store.put(Subscription("*", "desk@example.com", min_severity=Severity.CRITICAL))
    store.put(Subscription("globex", "ops@globex.example", min_severity=Severity.INFO))
    calls = record_calls(store._db, "dynamodb")

    found = store.recipients(_notification(Severity.WARNING))

    assert found.emails == tuple(f"tech{i}@example.com" for i in range(5))  # domain lower-cased
    queries = calls.named("Query")
    assert [q["ExpressionAttributeValues"][":o"]["S"] for q in queries] == [
        "acme", "acme", "acme", "*"]  # 5 items at 2 a page, then the fleet's one
    assert all(q["Limit"] == 2 for q in queries)
    assert "ExclusiveStartKey" in queries[1] and "Scan" not in calls.operations


def test_adding_again_changes_the_subscription_and_remove_says_whether_there_was_one(
        store: SubscriptionStore) -> None:
    store.put(Subscription("acme", "oncall@example.com", min_severity=Severity.INFO))
    store.put(Subscription("acme", "oncall@example.com", min_severity=Severity.CRITICAL,
                           on_resolved=False))
    [only] = list(store.of_organization("acme"))
    assert (only.min_severity, only.on_raised, only.on_resolved) == (
        Severity.CRITICAL, True, False)
    assert store.remove("acme", "oncall@example.com") is True
    assert store.remove("acme", "oncall@example.com") is False
    assert list(store.of_organization("acme")) == []


@pytest.mark.parametrize(("organization", "email", "options", "named"), [
    ("acme", "oncall", {}, "'oncall' is not an e-mail address"),
    ("acme", "a@b", {}, "'a@b' is not an e-mail address"),
    ("ac me", "a@example.com", {}, "organization 'ac me' must be an organization id"),
    ("acme", "a@example.com", {"on_raised": False, "on_resolved": False},
     "must want raised alerts, resolved ones or both"),
    ("acme", "a@example.com", {"min_severity": "urgent"}, "severity 'urgent' is not one of"),
])
def test_a_bad_subscription_is_refused_naming_what(organization: str, email: str,
                                                    options: dict[str, object],
                                                    named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        Subscription(organization, email, **options)  # type: ignore[arg-type]


def _config(tmp_path: Path, aws: AwsSandbox, role: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f'role = "{role}"\n[profiles.aws-test]\nendpoint_url = "{aws.endpoint_url}"\n'
                    f'region = "{aws.region}"\nstage = "{aws.stage}"\n')
    return str(path)


def test_smartiot_aws_subscriptions_add_list_remove(
        store: SubscriptionStore, aws: AwsSandbox, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from console import cli

    monkeypatch.setenv("SMARTIOT_ENTRY_POINTS", "0")
    base = ["--config", _config(tmp_path, aws, "engineer"), "--profile", "aws-test",
            "aws", "subscriptions"]
    assert cli.main([*base, "add", "acme", "oncall@example.com", "--min-severity",
                     "critical", "--raised-only"]) == 0
    assert "oncall@example.com gets raised alerts of severity critical and above" in (
        capsys.readouterr().out)
    assert cli.main([*base, "add", "*", "desk@example.com"]) == 0
    capsys.readouterr()
    assert cli.main([*base, "list", "acme", "--json"]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["email"] == "oncall@example.com" and row["min_severity"] == "critical"
    assert (row["on_raised"], row["on_resolved"]) == (True, False)
    assert row["created_by"]  # who added it
    assert [s.email for s in store.of_organization("*")] == ["desk@example.com"]

    assert cli.main([*base, "add", "acme", "not-an-address"]) == 2
    assert "'not-an-address' is not an e-mail address" in capsys.readouterr().err
    assert cli.main([*base, "remove", "acme", "oncall@example.com"]) == 0
    assert cli.main([*base, "remove", "acme", "oncall@example.com"]) == 1
    assert "was not subscribed" in capsys.readouterr().err
    assert list(store.of_organization("acme")) == []
    audited = [(action, subject, details.get("min_severity"))
               for action, subject, _, details in audit_entries(aws)]
    assert audited == [("notification.subscribe", "acme/oncall@example.com", "critical"),
                       ("notification.subscribe", "*/desk@example.com", "warning"),
                       ("notification.unsubscribe", "acme/oncall@example.com", None)]


def test_support_may_list_subscriptions_but_not_change_them(
        store: SubscriptionStore, aws: AwsSandbox, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from console import cli

    monkeypatch.setenv("SMARTIOT_ENTRY_POINTS", "0")
    store.put(Subscription("acme", "oncall@example.com"))
    base = ["--config", _config(tmp_path, aws, "support"), "--profile", "aws-test",
            "aws", "subscriptions"]
    assert cli.main([*base, "remove", "acme", "oncall@example.com"]) == 3
    assert "may not add, edit or delete alert rules" in capsys.readouterr().err
    assert cli.main([*base, "list", "acme"]) == 0
    assert "oncall@example.com\traised and resolved alerts of severity warning" in (
        capsys.readouterr().out)
    assert [s.email for s in store.of_organization("acme")] == ["oncall@example.com"]
    [(action, subject, _, details)] = audit_entries(aws)  # the refusal is on record
    assert (action, subject, details["outcome"]) == (
        "notification.unsubscribe", "acme/oncall@example.com", "denied")


# ------------------------------------------------- SES errors: retry or give up

@pytest.fixture
def ses(aws: AwsSandbox) -> Stubber:
    client = aws.client("ses")
    with Stubber(client) as stubber:
        yield stubber


def _channel(stubber: Stubber) -> SesEmailChannel:
    return SesEmailChannel(stubber.client, "alerts@fleet.example.com")


def test_ses_throttling_is_transient_and_stops_the_send(ses: Stubber) -> None:
    """moto never throttles: SES's answer is stubbed (botocore's Stubber)."""
    ses.add_client_error("send_email", service_error_code="Throttling",
                         service_message="Maximum sending rate exceeded.", http_status_code=400)
    with pytest.raises(TransientDeliveryError, match="Maximum sending rate exceeded"):
        _channel(ses).send(_notification(), ["a@example.com", "b@example.com"])
    ses.assert_no_pending_responses()  # b was not tried: the whole notification comes again


def test_an_address_ses_refuses_is_permanent_for_it_alone(ses: Stubber) -> None:
    ses.add_client_error("send_email", service_error_code="MessageRejected",
                         service_message="Address blacklisted.", http_status_code=400)
    ses.add_response("send_email", {"MessageId": "m-2"})
    with pytest.raises(PermanentDeliveryError) as refused:
        _channel(ses).send(_notification(), ["bounced@example.com", "b@example.com"])
    assert refused.value.refused == {"bounced@example.com": "MessageRejected: Address blacklisted."}
    ses.assert_no_pending_responses()  # b still got it
