"""Idempotency-Key answers kept in DynamoDB (``iot-idempotency-{stage}``) on
moto's server: the REST API over HTTP with its alerts and keys in DynamoDB
runs a retried change once, refuses a reused key for another request, lets
only one of simultaneous duplicates run, and the table expires old answers by
TTL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.crypto.keystore import CodeSigningKeys
from core.model import Alert, Severity
from core.model.roles import Role
from plugins.api.app import make_handler
from plugins.api.auth import TokenSigner
from plugins.api.wiring import build_api_services
from plugins.api.wsgi import ApiWsgiApp, serve, serve_in_thread
from tests.integration.api.conftest import Client, Reply, backend_over
from tests.integration.aws.conftest import DynamoBackedStore, DynamoFleet


@pytest.fixture
def client(dynamo: DynamoFleet, dynamo_store: DynamoBackedStore, tmp_path: Path
           ) -> Iterator[Client]:
    services = build_api_services(backend_over(dynamo_store),  # type: ignore[arg-type]
                                  signing_keys=CodeSigningKeys(tmp_path / "codesign"))
    tokens = TokenSigner.from_dir(tmp_path / "api")
    server = serve(ApiWsgiApp(make_handler(lambda: services,
                                           idempotency=lambda: dynamo.backend.idempotency),
                              tokens), "127.0.0.1", 0)
    serve_in_thread(server)
    try:
        yield Client(f"http://127.0.0.1:{server.server_port}", tokens)
    finally:
        server.shutdown()
        server.server_close()


def _ack(client: Client, alert_id: str, key: str, comment: str = "on it") -> Reply:
    return client.call("POST", f"/alerts/{alert_id}/acknowledge", {"comment": comment},
                       role=Role.SUPPORT, user="sam", headers={"Idempotency-Key": key})


def test_dynamodb_keeps_the_answer_and_runs_a_retry_once(
        client: Client, dynamo: DynamoFleet, dynamo_store: DynamoBackedStore) -> None:
    assert client.call("POST", "/devices", {"device_id": "pump-1",
                                            "device_type": "pump"}).status == 201
    alert = Alert("pump-1", "rule-high", Severity.WARNING, "pressure high", 9.5)
    dynamo_store.alerts.add(alert)
    first = _ack(client, alert.alert_id, "k-1")
    assert first.status == 200, first.body
    again = _ack(client, alert.alert_id, "k-1")
    assert again.status == 200 and again.body == first.body
    assert again.headers.get("Idempotent-Replayed") == "true"
    reused = _ack(client, alert.alert_id, "k-1", comment="another")
    assert reused.status == 422 and "'k-1'" in reused.error["message"]

    replies: list[Reply] = []
    start = threading.Barrier(6)

    def send() -> None:
        start.wait()
        replies.append(client.call("POST", f"/alerts/{alert.alert_id}/resolve", {},
                                   role=Role.SUPPORT, user="sam",
                                   headers={"Idempotency-Key": "k-resolve"}))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert {r.status for r in replies} <= {200, 409} and any(r.status == 200 for r in replies)
    audit = client.call("GET", f"/audit?target={alert.alert_id}").data["items"]
    assert sorted(e["action"] for e in audit) == ["alert.acknowledge", "alert.resolve"]

    stored = dynamo.backend.idempotency.get("sam", "k-1")
    assert stored is not None and stored.status == 200
    assert stored.request == f"POST /alerts/{alert.alert_id}/acknowledge"
    ttl = dynamo.backend.clients.dynamodb.describe_time_to_live(
        TableName=dynamo.settings.table("idempotency"))["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at_s"
    assert dynamo.settings.table("idempotency") == f"iot-idempotency-{dynamo.settings.stage}"
