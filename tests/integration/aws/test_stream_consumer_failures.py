"""The consumer when things go wrong: a transient failure is a batch item
failure (and the retry completes the stream exactly), and consumers that
start cold mid-stream, or take turns on the same devices' batches as Lambda
containers do, decide exactly as the hub."""

from __future__ import annotations

import itertools
from typing import Any

from botocore.awsrequest import AWSResponse

from plugins.aws.lambdas.telemetry_consumer import handle_event
from tests.integration.aws import test_stream_consumer as shared
from tests.integration.aws.test_stream_consumer import Reference, StreamStage, _outcome

# the same stage and hub reference as test_stream_consumer.py
reference = shared.reference
stage = shared.stage

VICTIM = "env-00001"


class ThrottleOnce:
    """DynamoDB answering ``ProvisionedThroughputExceededException`` (after the
    SDK's own retries gave up) to the first write of the victim's stream position:
    moto never throttles, so the answer is made here, on the real client's
    ``before-call`` event, and every other request goes to moto."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.fired = 0

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> Any:
        body = params.get("body", b"")
        text = body.decode() if isinstance(body, bytes) else str(body)
        if self.fired or self.table not in text or f'"{VICTIM}"' not in text:
            return None
        self.fired += 1
        response = AWSResponse("http://moto", 400, {}, None)
        return response, {"Error": {"Code": "ProvisionedThroughputExceededException",
                                    "Message": "Rate of requests exceeds the allowed throughput"},
                          "ResponseMetadata": {"HTTPStatusCode": 400}}


def test_a_throttled_write_is_a_batch_item_failure_and_the_retry_completes_the_stream(
        stage: StreamStage, reference: Reference) -> None:
    from plugins.aws.clients import clients_for
    from plugins.aws.stream.wiring import build_consumer

    clients = clients_for(stage.fleet.settings)
    throttle = ThrottleOnce(stage.fleet.settings.table("stream-state"))
    clients.dynamodb.meta.events.register("before-call.dynamodb.PutItem", throttle)
    consumer = build_consumer(stage.fleet.settings, clients=clients)
    answers: list[tuple[list[str], dict[str, Any]]] = []

    def invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
        answer = handle_event(consumer, event, context)
        answers.append(([r["kinesis"]["sequenceNumber"] for r in event["Records"]], answer))
        return answer

    source = stage.run(invoke)

    assert throttle.fired == 1 and source.retries == 1
    batch, first = next((b, a) for b, a in answers if a["batchItemFailures"])
    failed = {f["itemIdentifier"] for f in first["batchItemFailures"]}
    victims = {r["SequenceNumber"] for r in _records(stage) if r["PartitionKey"] == VICTIM}
    # exactly the victim's records of that batch: bad data and other devices are not retried
    assert failed == victims & set(batch) and failed
    assert consumer.counters.replayed > 0  # the retry skipped what was applied
    got = _outcome(stage)
    assert (got.history, got.alerts, got.quarantine, got.registry) == (
        reference.history, reference.alerts, reference.quarantine, reference.registry)


def test_cold_starts_and_containers_taking_turns_decide_as_the_hub(
        stage: StreamStage, reference: Reference) -> None:
    """Small batches, and each goes to the next of three consumers in turn
    (Lambda runs a shard's successive batches in whichever container is free),
    with a brand-new consumer (a cold start) every fourth batch."""
    consumers = [stage.new_consumer() for _ in range(3)]
    turn = itertools.count()

    def invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
        n = next(turn)
        if n % 4 == 3:
            consumers[n % 3] = stage.new_consumer()
        return handle_event(consumers[n % 3], event, context)

    source = stage.run(invoke, batch_size=15)

    assert source.invocations >= 8 and source.retries == 0
    assert sum(c.counters.resets for c in consumers) > 0, "a container must have been behind"
    got = _outcome(stage)
    assert got.alerts == reference.alerts
    assert got.history == reference.history
    assert got.quarantine == reference.quarantine
    assert got.registry == reference.registry


def _records(stage: StreamStage) -> list[dict[str, Any]]:
    from tests.integration.aws.stream_fixtures import records_of

    return list(records_of(stage.kinesis, stage.stream))


def test_a_cold_start_in_the_middle_of_a_breach_raises_the_alert_the_hub_raises(
        stage: StreamStage, reference: Reference) -> None:
    """The stream is cut right after the first reading over the temperature
    limit: the rule's minimum duration (10 s) started in the first consumer and
    must be carried by the saved state into a brand-new one."""
    import base64
    import json

    from plugins.aws.stream.event_source import kinesis_event

    records = _records(stage)

    def over_limit(r: dict[str, Any]) -> bool:
        payload = base64.b64decode(json.loads(r["Data"])["payload"])
        try:
            doc = json.loads(payload)
        except ValueError:
            return False
        return bool(doc.get("device_id") == "env-00000" and doc["metrics"]["temperature"] > 30)
    cut = next(i for i, r in enumerate(records) if over_limit(r))
    shard = records[cut]["ShardId"]
    arn = stage.kinesis.describe_stream(StreamName=stage.stream)["StreamDescription"]["StreamARN"]

    def feed(consumer: Any, part: list[dict[str, Any]]) -> None:
        for shard_id in sorted({r["ShardId"] for r in part}):
            batch = [r for r in part if r["ShardId"] == shard_id]
            for i in range(0, len(batch), 100):
                answer = handle_event(consumer, kinesis_event(
                    batch[i:i + 100], arn, stage.aws.region, shard_id))
                assert answer == {"batchItemFailures": []}

    on_shard = [r for r in records if r["ShardId"] == shard]
    split = on_shard.index(records[cut]) + 1
    others = [r for r in records if r["ShardId"] != shard]
    feed(stage.new_consumer(), on_shard[:split] + others)
    feed(stage.new_consumer(), on_shard[split:])

    got = _outcome(stage)
    assert got.alerts == reference.alerts
    assert got.history == reference.history


def test_a_value_below_dynamodbs_smallest_number_is_stored_as_the_hub_stores_it(
        stage: StreamStage, tmp_path: Any) -> None:
    """1e-200 passes the protocol (finite, within ±1e15) but is below the
    smallest magnitude a DynamoDB number holds (1e-130). The hub's SQLite
    store keeps it exactly; so does the consumer on AWS — history and the
    latest value answer 1e-200 and -1e-140, nothing is quarantined or retried."""
    import json

    from core.model import Reading
    from core.model.timeutil import from_epoch_ms
    from core.store import Store
    from tests.integration.aws.stream_fixtures import publish, simulated_stream

    stage.run(stage.handler())
    stream = simulated_stream()
    tail = [m for m in stream if m.topic.endswith("/env-00001/telemetry")
            and m.payload.startswith(b"{") and b'"device_id":"env-00001"' in m.payload][-1]
    doc = json.loads(tail.payload)
    fresh = []
    tiny = {2: 1e-200, 3: -1e-140}
    for k in range(1, 4):
        doc.update(seq=doc["seq"] + 1, ts=doc["ts"] + 5000, uptime=doc["uptime"] + 5)
        metrics = dict(doc["metrics"], humidity=tiny[k]) if k in tiny else doc["metrics"]
        body = json.dumps(dict(doc, metrics=metrics)).encode()
        fresh.append(type(tail)(tail.topic, body, doc["ts"] + 40))
    publish(stage.kinesis, stage.stream, tuple(fresh))

    source = stage.run(stage.handler())

    assert source.retries == 0
    assert stage.quarantine.list(reason="store_refused") == []
    stamps = [json.loads(m.payload)["ts"] for m in fresh]
    humidity = dict(_series(stage, "env-00001", "humidity"))
    assert [humidity[t] for t in stamps[1:]] == [1e-200, -1e-140]
    assert stage.fleet.backend.telemetry.latest("env-00001")["humidity"].value == -1e-140
    assert stage.fleet.backend.telemetry.latest_values(["humidity"])["env-00001"]["humidity"] \
        == -1e-140
    with Store.open(f"sqlite:///{tmp_path / 'hub.db'}") as hub:
        hub.telemetry.write_batch([Reading("env-00001", "humidity", from_epoch_ms(t), v)
                                   for t, v in zip(stamps[1:], tiny.values(), strict=True)])
        kept = hub.telemetry.query("env-00001", "humidity", from_epoch_ms(stamps[0]),
                                   from_epoch_ms(stamps[-1] + 1))
    assert kept.value.tolist() == [humidity[t] for t in stamps[1:]]


def _series(stage: StreamStage, device: str, metric: str) -> list[tuple[int, float]]:
    from datetime import timedelta

    from core.model.timeutil import utcnow

    series = stage.fleet.backend.telemetry.query(device, metric, utcnow() - timedelta(hours=2),
                                                 utcnow() + timedelta(hours=1))
    return list(zip(series.ts_ms.tolist(), series.value.tolist(), strict=True))


def test_a_notification_whose_send_failed_is_sent_when_the_record_is_retried(
        stage: StreamStage, reference: Reference) -> None:
    """SQS refuses the first alert message (throttled): the alert is already
    written, so the engine sees no change on the retry — the message comes from
    the outbox stored with the engine state, and none is lost."""
    from plugins.aws.clients import clients_for
    from plugins.aws.notifications.queue import parse_notification
    from plugins.aws.stream.wiring import build_consumer
    from tests.integration.aws.stream_fixtures import drain_queue

    clients = clients_for(stage.fleet.settings)
    refused: list[str] = []

    def throttle_first(params: dict[str, Any], model: Any, **_: Any) -> Any:
        if refused:
            return None
        refused.append(model.name)
        return (AWSResponse("http://moto", 400, {}, None),
                {"Error": {"Code": "AWS.SimpleQueueService.RequestThrottled",
                           "Message": "Request is throttled."},
                 "ResponseMetadata": {"HTTPStatusCode": 400}})

    clients.client("sqs").meta.events.register("before-call.sqs.SendMessage", throttle_first)
    consumer = build_consumer(stage.fleet.settings, clients=clients)

    source = stage.run(lambda event, context: handle_event(consumer, event, context))

    assert refused == ["SendMessage"] and source.retries == 1
    alerts = stage.fleet.backend.alerts.list()
    expected = {("alert.raised", a.alert_id) for a in alerts} | {
        ("alert.resolved", a.alert_id) for a in alerts if a.resolved_at is not None}
    queued = [parse_notification(b) for b in drain_queue(stage.sqs, stage.queue_url)]
    assert sorted((n.kind.value, n.alert.alert_id) for n in queued) == sorted(expected)
    assert _outcome(stage).alerts == reference.alerts
