"""Listing the fleet through the HTTP client against the aws backend's API
(the Lambda handler behind the local Cognito authorizer, over moto's
DynamoDB): each device once, in id order, with devices removed and added
while the pages are read; a later page's Query starts at the last id read
instead of reading the pages before it; a foreign ``next`` is a 400."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from core.model import Device, DeviceStatus
from core.model.roles import Role
from core.ports.registry import DeviceQuery
from plugins.api.client import HttpFleetApi, StaticToken
from plugins.aws.api_server import api_url, serve_api
from plugins.aws.dynamodb.registry import DynamoDeviceRegistry
from tests.integration.aws.cognito_pool import ORG, CognitoStage
from tests.integration.aws.conftest import DynamoFleet

FLEET = 600
PAGE = 97


def _device(i: int, org: str = ORG) -> Device:
    return Device(f"dev-{i:05d}", name=f"Pump {i}", device_type="pump", organization=org,
                  status=DeviceStatus.ONLINE if i % 3 else DeviceStatus.OFFLINE)


@pytest.fixture
def on_aws(cognito: CognitoStage) -> Iterator[tuple[HttpFleetApi, DynamoDeviceRegistry, str]]:
    settings = replace(cognito.settings, page_size=500)
    registry = DynamoDeviceRegistry(cognito.aws.client("dynamodb"), settings)
    registry.upsert_many([_device(i) for i in range(FLEET)]
                         + [_device(i, "globex") for i in range(FLEET, FLEET + 40)])
    server = serve_api(settings, port=0)
    token = cognito.tokens(Role.SUPPORT).id_token
    try:
        yield (HttpFleetApi(api_url(server), StaticToken(token), retries=0), registry,
               api_url(server))
    finally:
        server.shutdown()
        server.server_close()


def test_every_device_once_in_order_while_devices_come_and_go(
        on_aws: tuple[HttpFleetApi, DynamoDeviceRegistry, str]) -> None:
    http, registry, _url = on_aws
    first = http.devices.list(limit=PAGE)
    second = http.devices.list(limit=PAGE, next_token=first.next)
    for d in first.items[:10]:
        registry.delete(d.device_id)
    registry.upsert(_device(1_500_000))  # ahead of the reader
    seen = [d.device_id for d in first.items + second.items]
    token = second.next
    while token:
        page = http.devices.list(limit=PAGE, next_token=token)
        assert len(page.items) <= PAGE
        seen.extend(d.device_id for d in page.items)
        token = page.next
    assert seen == [f"dev-{i:05d}" for i in range(FLEET)] + ["dev-1500000"]

    offline = http.devices.all(DeviceQuery(statuses=frozenset({DeviceStatus.OFFLINE})))
    assert [d.device_id for d in offline] == [f"dev-{i:05d}" for i in range(12, FLEET, 3)] + [
        "dev-1500000"]
    pages = list(http.devices.overview_pages(limit=PAGE))
    assert pages[0].total == FLEET - 10 + 1
    assert [d.device_id for p in pages for d in p.overview.devices] == seen[10:]


def test_a_later_page_starts_its_query_at_the_last_id_read(dynamo: DynamoFleet) -> None:
    registry = dynamo.backend.registry
    registry.upsert_many([_device(i) for i in range(30)] + [_device(i, "globex")
                                                           for i in range(30, 40)])
    dynamo.calls.clear()
    page = registry.list(DeviceQuery(limit=6, after="dev-00020"))
    assert [d.device_id for d in page] == [f"dev-{i:05d}" for i in range(21, 27)]
    queries = [q for q in dynamo.calls.named("Query") if q.get("IndexName")]
    assert queries and all("device_id > :a" in q["KeyConditionExpression"] for q in queries)
    assert not dynamo.calls.named("Scan")


@pytest.mark.parametrize("token", ["not-a-token", "eyJvIjotNX0", "eyJvIjoxLCJhIjo1fQ"])
def test_a_token_the_server_did_not_issue_is_a_400_naming_next(
        on_aws: tuple[HttpFleetApi, DynamoDeviceRegistry, str], token: str) -> None:
    from core.errors import ValidationError

    http, _registry, _url = on_aws
    with pytest.raises(ValidationError, match="next"):
        http.devices.list(limit=5, next_token=token)
    with pytest.raises(ValidationError, match="next"):
        http.devices.overview_page(limit=5, next_token=token)
