"""An aws profile pointed at moto builds the aws backend through the plugin,
and the console's use cases (context.api) and the REST API work over it; a
lost acknowledgement race reaches a REST caller as 409 with who won."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.context import AppContext
from core.model import Alert, AlertState, Device, Severity
from core.model.roles import Role
from tests.integration.api.conftest import start_api
from tests.integration.aws.conftest import DynamoBackedStore, DynamoFleet


@pytest.fixture
def context(aws_context: AppContext) -> AppContext:
    return aws_context


def test_an_aws_profile_serves_the_console_from_dynamodb(context: AppContext) -> None:
    from plugins.aws.backend import AwsBackend
    from plugins.aws.dynamodb.tables import create_tables

    backend = context.backend
    assert isinstance(backend, AwsBackend) and backend.name == "aws"
    assert backend.registry.__class__.__name__ == "ThingSyncedRegistry"  # DynamoDB + IoT
    tables = create_tables(backend.clients.dynamodb, backend.settings)
    assert f"iot-devices-{backend.settings.stage}" in tables

    made = context.api.devices.register(Device("pump-1", device_type="pump"))
    assert (made.organization, made.version) == ("acme", 1)
    assert [d.device_id for d in context.api.devices.all()] == ["pump-1"]
    backend.alerts.add(Alert("pump-1", "hot", Severity.CRITICAL, "hot pump", alert_id="a-1"))
    acknowledged = context.api.alerts.acknowledge("a-1", "on my way")
    assert (acknowledged.state, acknowledged.acknowledged_by) == (AlertState.ACKNOWLEDGED, "ada")
    assert [a.alert_id for a in context.api.alerts.list_alerts().items] == ["a-1"]


@pytest.fixture
def store(dynamo_store: DynamoBackedStore) -> DynamoBackedStore:
    return dynamo_store


def test_the_loser_of_an_acknowledgement_race_gets_409_naming_the_winner(
        dynamo: DynamoFleet, store: DynamoBackedStore, tmp_path: Path) -> None:
    store.registry.upsert(Device("pump-1", organization="acme"))
    store.alerts.add(Alert("pump-1", "hot", Severity.CRITICAL, "hot pump", alert_id="a-1"))
    bob = dynamo.second_backend().alerts  # another console, same table

    def bob_first(**_: Any) -> None:
        if bob.get("a-1").state is AlertState.ACTIVE:
            bob.save(bob.get("a-1").acknowledge("bob", "mine"))

    events = dynamo.backend.clients.dynamodb.meta.events
    events.register("before-parameter-build.dynamodb.TransactWriteItems", bob_first)
    api = start_api(store, tmp_path)  # a Store in all but its registry and alerts
    running = next(api)
    try:
        reply = running.client.call("POST", "/alerts/a-1/acknowledge", {"comment": "ada's"},
                                    role=Role.SUPPORT, user="ada", org="acme")
    finally:
        events.unregister("before-parameter-build.dynamodb.TransactWriteItems", bob_first)
        api.close()
    assert reply.status == 409
    assert reply.error["code"] == "CONFLICT"
    assert "changed by bob in the meantime (it is now acknowledged" in reply.error["message"]
    assert reply.error["details"] == {"changed_by": "bob"}
    assert store.alerts.get("a-1").acknowledged_by == "bob"
