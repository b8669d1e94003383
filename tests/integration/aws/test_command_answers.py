"""A device's answer to a command on AWS, on moto's server: the answers IoT rule
puts ``cmd/{org}/{device}/res`` into the command-answers table (its DynamoDBv2
action; the item is the rule's SQL as IoT Core evaluates it), and the channel
that sent the command — in the REST API's Lambda, which hears no MQTT — reads
it there and resolves the command. The stream consumer, which the answers
used to go through (a 5 s batch window behind telemetry), skips any answer
the stream still holds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from core.model import Device
from core.ports.commands import CommandOutcome
from core.protocol.payloads import CommandResponse, decode_command_request
from core.protocol.topics import command_response_topic
from plugins.aws.notifications.queue import create_queue
from plugins.aws.stream.event_source import KinesisEventSource
from plugins.aws.stream.rule import AnswerNotKept, answer_item, stream_name
from tests.integration.aws.conftest import ApiCalls, DynamoFleet, record_calls
from tests.integration.aws.stream_fixtures import create_stream, publish

ORG = "acme"


class Stage:
    def __init__(self, fleet: DynamoFleet, kinesis: Any, stream: str, region: str) -> None:
        self.fleet = fleet
        self.kinesis = kinesis
        self.stream = stream
        self.region = region

    @property
    def dynamodb(self) -> Any:
        return self.fleet.backend.clients.dynamodb

    def device_answers(self, device_id: str, response: CommandResponse) -> None:
        """What the device publishes, as the answers rule's action puts it."""
        item = answer_item(command_response_topic(ORG, device_id), response.encode(),
                           int(time.time() * 1000))
        self.dynamodb.put_item(TableName=self.fleet.settings.table("command-answers"),
                               Item=item)

    def sent_item(self, request_id: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.dynamodb.get_item(
            TableName=self.fleet.settings.table("commands"),
            Key={"request_id": {"S": request_id}}, ConsistentRead=True).get("Item")
        return item


@pytest.fixture
def stage(dynamo: DynamoFleet, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stage]:
    aws = dynamo.settings
    for device_id in ("pump-1", "pump-2"):
        dynamo.backend.registry.upsert(Device(device_id, device_type="pump", organization=ORG))
    kinesis = dynamo.backend.clients.client("kinesis")
    create_stream(kinesis, stream_name(aws.stage), shards=1)
    create_queue(dynamo.backend.clients.client("sqs"), aws.stage)
    for var, value in {"SMARTIOT_STAGE": aws.stage, "SMARTIOT_ENDPOINT_URL": aws.endpoint_url,
                       "AWS_REGION": aws.region}.items():
        monkeypatch.setenv(var, str(value))
    yield Stage(dynamo, kinesis, stream_name(aws.stage), aws.region)


@pytest.fixture
def iot_calls(stage: Stage) -> ApiCalls:
    return record_calls(stage.fleet.backend.clients.client("iot-data"), "iot-data")


def _sent(iot_calls: ApiCalls) -> str:
    return decode_command_request(iot_calls.named("Publish")[-1]["payload"]).request_id


def test_the_devices_answer_comes_back_through_its_rule_to_the_waiting_command(
        stage: Stage, iot_calls: ApiCalls) -> None:
    commands = stage.fleet.backend.commands
    future = commands.send("pump-1", "ping", timeout_s=10)
    request_id = _sent(iot_calls)
    sent = stage.sent_item(request_id)  # on record before the publish
    assert sent is not None and (sent["device_id"]["S"], sent["command"]["S"]) == (
        "pump-1", "ping")
    stage.device_answers("pump-1", CommandResponse(request_id, "ping", True, {"uptime": 42}))
    result = future.result(timeout=5)
    assert (result.outcome, result.payload, result.device_id, result.request_id) == (
        CommandOutcome.OK, {"uptime": 42}, "pump-1", request_id)
    # the channel reads every 50-250 ms: the answer is taken within a poll or two
    assert result.latency_ms is not None and result.latency_ms < 2_000


def test_another_devices_answer_to_the_same_request_resolves_nothing(
        stage: Stage, iot_calls: ApiCalls) -> None:
    commands = stage.fleet.backend.commands
    future = commands.send("pump-1", "ping", timeout_s=1.5)
    request_id = _sent(iot_calls)
    # another device answering pump-1's request id, and an answer to nothing sent
    stage.device_answers("pump-2", CommandResponse(request_id, "ping", True, {"from": "pump-2"}))
    stage.device_answers("pump-2", CommandResponse("f" * 32, "ping", True))
    result = future.result(timeout=5)
    assert result.outcome is CommandOutcome.TIMEOUT, result
    # the device's own answer, delivered twice (at least once), resolves the next command
    future = commands.send("pump-1", "ping", timeout_s=10)
    request_id = _sent(iot_calls)
    for _ in range(2):
        stage.device_answers("pump-1", CommandResponse(request_id, "ping", True, {"n": 1}))
    result = future.result(timeout=5)
    assert (result.outcome, result.payload) == (CommandOutcome.OK, {"n": 1})


def test_the_rule_refuses_an_answer_it_cannot_key_naming_the_topic() -> None:
    topic = command_response_topic(ORG, "pump-1")
    with pytest.raises(AnswerNotKept, match="cmd/acme/pump-1/res: the payload is not JSON"):
        answer_item(topic, b"\xff not json", 1)
    with pytest.raises(AnswerNotKept, match="request_id 7 is not a non-empty string"):
        answer_item(topic, b'{"request_id": 7, "ok": true}', 1)
    item = answer_item(topic, b'{"request_id": "r1", "ok": true}', 1_795_000_000_123)
    assert (item["request_id"], item["device_id"], item["expires_at"]) == (
        {"S": "r1"}, {"S": "pump-1"}, {"N": str(1_795_000_000 + 24 * 3600)})


def test_an_answer_still_on_the_stream_is_skipped_not_quarantined(stage: Stage) -> None:
    """Records the rules of an earlier deploy put on the stream: counted, not ingested."""
    from core.ingest.ingestor import Inbound
    from plugins.aws.dynamodb.quarantine import DynamoQuarantineStore
    from plugins.aws.lambdas import telemetry_consumer

    publish(stage.kinesis, stage.stream, (Inbound(
        command_response_topic(ORG, "pump-1"),
        CommandResponse("a" * 32, "ping", True).encode(), int(time.time() * 1000)),))
    source = KinesisEventSource(stage.kinesis, stage.stream, telemetry_consumer.handler,
                                region=stage.region)
    while source.poll():
        pass
    consumer = telemetry_consumer.consumer_from_environment()
    assert consumer.counters.command_answers_skipped == 1
    assert DynamoQuarantineStore(stage.dynamodb, stage.fleet.settings).counts_by_reason() == {}
