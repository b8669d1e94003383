"""DynamoDB cancels a transaction with ``TransactionConflict`` while another
one on the same item is in flight; moto never does, so this is checked with
botocore's Stubber (docs/aws.md, "Gaps"): the change is retried, and only a
``ConditionalCheckFailed`` (someone else's change is stored) refuses it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from core.errors import ConcurrentModification
from core.model import Alert, Severity
from plugins.aws.dynamodb.alerts import DynamoAlertStore, _to_item
from plugins.aws.settings import AwsSettings

ALERT = Alert("pump-1", "hot", Severity.CRITICAL, "hot pump", alert_id="a-1")


@pytest.fixture
def stubbed() -> Iterator[tuple[DynamoAlertStore, Stubber]]:
    client = boto3.client("dynamodb", region_name="eu-west-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    with Stubber(client) as stubber:
        yield DynamoAlertStore(client, AwsSettings(region="eu-west-1", stage="t")), stubber
        stubber.assert_no_pending_responses()


def _cancelled(stubber: Stubber, *codes: str) -> None:
    stubber.add_client_error(
        "transact_write_items", service_error_code="TransactionCanceledException",
        service_message="Transaction cancelled", http_status_code=400,
        modeled_fields={"CancellationReasons": [{"Code": code} for code in codes]})


def _stored(stubber: Stubber, alert: Alert) -> None:
    stubber.add_response("get_item", {"Item": _to_item(alert, "acme")},
                         {"TableName": "iot-alerts-t", "Key": {"alert_id": {"S": "a-1"}},
                          "ConsistentRead": True})


def test_a_transaction_conflict_is_retried_not_reported_as_a_lost_race(
        stubbed: tuple[DynamoAlertStore, Stubber]) -> None:
    store, stubber = stubbed
    _stored(stubber, ALERT)
    _cancelled(stubber, "TransactionConflict", "None", "None")
    stubber.add_response("transact_write_items", {}, {"TransactItems": ANY})
    store.save(ALERT.acknowledge("ada"))


def test_a_failed_condition_after_a_conflict_names_who_won(
        stubbed: tuple[DynamoAlertStore, Stubber]) -> None:
    store, stubber = stubbed
    _stored(stubber, ALERT)
    _cancelled(stubber, "TransactionConflict", "None", "None")
    _cancelled(stubber, "ConditionalCheckFailed", "None", "None")
    won: Any = ALERT.acknowledge("bob")
    _stored(stubber, won)
    with pytest.raises(ConcurrentModification, match="changed by bob") as caught:
        store.save(ALERT.acknowledge("ada"))
    assert caught.value.changed_by == "bob"
