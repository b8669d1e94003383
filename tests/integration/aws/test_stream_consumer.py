"""The Kinesis telemetry consumer on moto's server: a real stream filled as the
IoT rule fills it, read as Lambda's event source mapping reads it, through
the Lambda handler. The same simulated stream through the local hub's ingest
path (SQLite) is the reference: same history, same alerts raised and
resolved, same quarantine, same registry."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.ports.notifications import NotificationKind
from core.protocol.topics import alerts_topic
from core.services.alerting.defaults import default_rules
from plugins.aws.dynamodb.quarantine import DynamoQuarantineStore
from plugins.aws.notifications.queue import create_queue, parse_notification
from plugins.aws.stream.event_source import KinesisEventSource, kinesis_event
from plugins.aws.stream.rule import stream_name
from tests.integration.aws.conftest import ApiCalls, AwsSandbox, DynamoFleet
from tests.integration.aws.stream_fixtures import (
    ORG,
    alert_outcome,
    create_stream,
    drain_queue,
    history,
    publish,
    quarantine_outcome,
    records_of,
    registry_outcome,
    run_local_hub,
    simulated_stream,
)

DEVICES = ["env-00000", "env-00001", "env-00002"]
METRICS = ["temperature", "humidity", "battery_pct"]


@dataclass
class Reference:
    """The local hub's result for the simulated stream."""

    alerts: list[Any]
    history: dict[Any, Any]
    quarantine: list[Any]
    registry: list[Any]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    stream = simulated_stream()
    store = run_local_hub(stream, Path(tmp_path_factory.mktemp("hub")) / "hub.db")
    try:
        return Reference(alert_outcome(store.alerts), history(store.telemetry, stream, DEVICES,
                                                               METRICS),
                         quarantine_outcome(store.quarantine), registry_outcome(store.registry))
    finally:
        store.close()


@dataclass
class StreamStage:
    fleet: DynamoFleet
    aws: AwsSandbox
    kinesis: Any
    sqs: Any
    stream: str
    queue_url: str
    quarantine: DynamoQuarantineStore

    def handler(self) -> Any:
        from plugins.aws.lambdas.telemetry_consumer import handler

        return handler

    def new_consumer(self) -> Any:
        """A consumer in a fresh container (a cold start, another shard's)."""
        from plugins.aws.stream.wiring import build_consumer

        return build_consumer(self.fleet.settings)

    def source(self, handler: Any, batch_size: int = 100) -> KinesisEventSource:
        return KinesisEventSource(self.kinesis, self.stream, handler, batch_size=batch_size,
                                  region=self.aws.region)

    def run(self, handler: Any, batch_size: int = 100) -> KinesisEventSource:
        source = self.source(handler, batch_size)
        while source.poll():
            pass
        return source


# the tables the consumer, the ticker and the comparisons touch (creating all of a
# stage's tables would be most of each test's time)
TABLES = ("devices", "organizations", "alerts", "alert-events", "alert-rules", "telemetry",
          "telemetry-rollups", "telemetry-latest", "quarantine", "alert-state", "stream-state")


@pytest.fixture
def stage(aws: AwsSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[StreamStage]:
    from plugins.aws.backend import build_aws_backend_for
    from plugins.aws.dynamodb.tables import TABLES as ALL_TABLES
    from plugins.aws.dynamodb.tables import create_tables
    from plugins.aws.settings import AwsSettings

    settings = AwsSettings(region=aws.region, stage=aws.stage, endpoint_url=aws.endpoint_url)
    reader = build_aws_backend_for(settings)
    create_tables(reader.clients.dynamodb, settings,
                  tuple(spec for spec in ALL_TABLES if spec.role in TABLES))
    assert reader.rules is not None
    for rule in default_rules():
        reader.rules.add(rule)
    kinesis, sqs = aws.client("kinesis"), aws.client("sqs")
    name = stream_name(aws.stage)
    create_stream(kinesis, name)
    publish(kinesis, name, simulated_stream())
    url = create_queue(sqs, aws.stage)
    for var, value in {"SMARTIOT_STAGE": aws.stage, "SMARTIOT_ENDPOINT_URL": aws.endpoint_url,
                       "AWS_REGION": aws.region}.items():
        monkeypatch.setenv(var, value)
    yield StreamStage(DynamoFleet(reader, settings, ApiCalls()), aws, kinesis, sqs, name, url,
                      DynamoQuarantineStore(reader.clients.dynamodb, settings))


def _outcome(stage: StreamStage) -> Reference:
    backend = stage.fleet.backend
    return Reference(alert_outcome(backend.alerts),
                     history(backend.telemetry, simulated_stream(), DEVICES, METRICS),
                     quarantine_outcome(stage.quarantine), registry_outcome(backend.registry))


def test_the_stream_gives_the_hubs_history_alerts_quarantine_and_registry(
        stage: StreamStage, reference: Reference) -> None:
    source = stage.run(stage.handler())

    got = _outcome(stage)
    assert got.history == reference.history
    assert sum(len(v) for v in got.history.values()) > 100
    assert got.alerts == reference.alerts
    states = sorted(a[3] for a in got.alerts)
    assert "resolved" in states, "the stream must raise an alert and resolve it"
    assert got.quarantine == reference.quarantine
    reasons = {q[0] for q in got.quarantine}
    assert {"duplicate", "invalid_device_id"} <= reasons and len(reasons) >= 3
    assert got.registry == reference.registry
    assert ("env-00002", ORG, "environmental", "offline", "1.0.0") in got.registry  # Last Will
    assert source.retries == 0
    # the console's Quarantine page on AWS: counts, a reason's rows, newest first
    quarantine = stage.fleet.backend.quarantine
    assert quarantine.counts_by_reason() == dict(Counter(q[0] for q in reference.quarantine))
    duplicates = quarantine.list(reason="duplicate")
    assert duplicates and all(q.reason == "duplicate" for q in duplicates)
    newest_first = [q.received_at for q in quarantine.list()]
    assert newest_first == sorted(newest_first, reverse=True)

    # consoles and the notification queue hear of every raise and resolution
    raised_and_resolved = stage.fleet.backend.alerts.list()
    expected = {(NotificationKind.RAISED.value, a.alert_id) for a in raised_and_resolved} | {
        (NotificationKind.RESOLVED.value, a.alert_id) for a in raised_and_resolved
        if a.resolved_at is not None}
    bodies = drain_queue(stage.sqs, stage.queue_url)
    queued = [parse_notification(b) for b in bodies]
    assert {(n.kind.value, n.alert.alert_id) for n in queued} == expected
    assert len(queued) == len(expected)
    message = json.loads(bodies[0])
    assert set(message) == {"kind", "alert", "sent_at"}
    assert set(message["alert"]) == {"alert_id", "device_id", "organization_id", "severity",
                                     "rule_id", "message", "state", "created_at",
                                     "resolved_at"}
    assert message["alert"]["organization_id"] == ORG

    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.iotdata.models import iotdata_backends

    published = iotdata_backends[DEFAULT_ACCOUNT_ID][stage.aws.region].published_payloads
    on_topic = [parse_notification(bytes(body)) for topic, body in published
                if topic == alerts_topic(ORG)]
    ours = {(n.kind.value, n.alert.alert_id) for n in on_topic
            if n.alert.alert_id in {a.alert_id for a in raised_and_resolved}}
    assert ours == expected


def test_a_replayed_batch_changes_nothing(stage: StreamStage) -> None:
    handler = stage.handler()
    stage.run(handler)
    before = _outcome(stage)
    drain_queue(stage.sqs, stage.queue_url)
    states = _state_items(stage)

    records = list(records_of(stage.kinesis, stage.stream))
    arn = stage.kinesis.describe_stream(StreamName=stage.stream)["StreamDescription"]["StreamARN"]
    for shard in sorted({r["ShardId"] for r in records}):
        batch = [r for r in records if r["ShardId"] == shard]
        answer = handler(kinesis_event(batch, arn, stage.aws.region, shard), None)
        assert answer == {"batchItemFailures": []}

    from plugins.aws.lambdas.telemetry_consumer import consumer_from_environment

    counters = consumer_from_environment().counters
    assert counters.replayed == len(records) - 1  # all but the one naming no valid device
    assert _outcome(stage) == before
    assert _state_items(stage) == states
    assert drain_queue(stage.sqs, stage.queue_url) == []


def test_bad_records_are_quarantined_with_reasons_and_never_retried(stage: StreamStage) -> None:
    from core.ingest.ingestor import Inbound, Ingestor
    from core.ingest.registry_cache import RegistryCache
    from plugins.aws.stream.rule import rule_record

    stage.run(stage.handler())
    received = simulated_stream()[-1].received_ms + 1000
    not_json = ("dt/acme/env-00001/telemetry", b"{\"seq\": 99, \"ts\": ")
    foreign = [b"\x00\x01 not a record", b'{"topic": "dt/acme/env-00001/telemetry", '
               b'"payload": "%%%", "received_at": 1}', b"[1, 2]"]
    for data in foreign:
        stage.kinesis.put_record(StreamName=stage.stream, Data=data, PartitionKey="env-00001")
    stage.kinesis.put_record(StreamName=stage.stream, PartitionKey="env-00001",
                             Data=rule_record(not_json[0], not_json[1], received))
    source = stage.run(stage.handler())
    assert source.retries == 0

    bad = stage.quarantine.list(reason="bad_record")
    assert len(bad) == 3
    assert any("not JSON" in q.detail for q in bad)
    assert any("not base64" in q.detail for q in bad)
    assert any("must be a JSON object" in q.detail for q in bad)
    # the payload the hub would refuse, refused with the hub's own reason
    hub = Ingestor(RegistryCache(stage.fleet.backend.registry))
    hub.cache.refresh("env-00001")
    expected = hub.process([Inbound(not_json[0], not_json[1], received)], received).quarantined
    stored = [q for q in stage.quarantine.list(device_id="env-00001")
              if q.payload == not_json[1]]
    assert [(q.reason, q.detail) for q in stored] == [(e.reason, e.detail) for e in expected]


def _state_items(stage: StreamStage) -> list[Any]:
    db = stage.fleet.backend.clients.dynamodb
    items = []
    for role in ("stream-state", "alert-state"):
        for device in DEVICES:
            got = db.get_item(TableName=stage.fleet.settings.table(role),
                              Key={"device_id": {"S": device}}, ConsistentRead=True)
            items.append(got.get("Item"))
    return items
