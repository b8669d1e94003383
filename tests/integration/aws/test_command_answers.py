"""A device's answer to a command on AWS, on moto's server: the IoT rule puts
``cmd/{org}/{device}/res`` into the stream, the stream consumer (the Lambda
handler, fed as Lambda's event source mapping feeds it) keeps it in the
commands table, and the channel that sent the command — in the REST API's
Lambda, which hears no MQTT — reads it there and resolves the command."""

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
from plugins.aws.stream.rule import stream_name
from tests.integration.aws.conftest import ApiCalls, DynamoFleet, record_calls
from tests.integration.aws.stream_fixtures import create_stream, publish

ORG = "acme"


class Stage:
    def __init__(self, fleet: DynamoFleet, kinesis: Any, stream: str, region: str) -> None:
        self.fleet = fleet
        self.kinesis = kinesis
        self.stream = stream
        self.region = region

    def device_answers(self, device_id: str, response: CommandResponse) -> None:
        """What the device publishes, as the rule puts it on the stream."""
        from core.ingest.ingestor import Inbound

        publish(self.kinesis, self.stream, (Inbound(command_response_topic(ORG, device_id),
                                                    response.encode(),
                                                    int(time.time() * 1000)),))

    def consume(self) -> None:
        """Lambda's event source mapping: every record to the consumer's handler."""
        from plugins.aws.lambdas.telemetry_consumer import handler

        source = KinesisEventSource(self.kinesis, self.stream, handler, region=self.region)
        while source.poll():
            pass

    def answer_item(self, request_id: str) -> dict[str, Any]:
        item: dict[str, Any] = self.fleet.backend.clients.dynamodb.get_item(
            TableName=self.fleet.settings.table("commands"),
            Key={"request_id": {"S": request_id}}, ConsistentRead=True)["Item"]
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


def test_the_devices_answer_comes_back_through_the_stream_to_the_waiting_command(
        stage: Stage, iot_calls: ApiCalls) -> None:
    commands = stage.fleet.backend.commands
    future = commands.send("pump-1", "ping", timeout_s=10)
    request_id = _sent(iot_calls)
    assert stage.answer_item(request_id)["device_id"]["S"] == "pump-1"  # recorded first
    stage.device_answers("pump-1", CommandResponse(request_id, "ping", True, {"uptime": 42}))
    stage.consume()
    result = future.result(timeout=5)
    assert (result.outcome, result.payload, result.device_id, result.request_id) == (
        CommandOutcome.OK, {"uptime": 42}, "pump-1", request_id)
    assert result.latency_ms is not None and result.latency_ms < 10_000
    # an answer is not ingest's: nothing quarantined for it (the hub's ingest would refuse
    # a response payload as telemetry)
    from plugins.aws.dynamodb.quarantine import DynamoQuarantineStore
    assert DynamoQuarantineStore(stage.fleet.backend.clients.dynamodb,
                                 stage.fleet.settings).counts_by_reason() == {}


def test_answers_nobody_waits_for_change_nothing(stage: Stage, iot_calls: ApiCalls) -> None:
    commands = stage.fleet.backend.commands
    future = commands.send("pump-1", "ping", timeout_s=1.5)
    request_id = _sent(iot_calls)
    # another device answering pump-1's request id, and an answer to nothing sent
    stage.device_answers("pump-2", CommandResponse(request_id, "ping", True, {"from": "pump-2"}))
    stage.device_answers("pump-2", CommandResponse("f" * 32, "ping", True))
    stage.consume()
    assert "answer" not in stage.answer_item(request_id)
    assert future.result(timeout=5).outcome is CommandOutcome.TIMEOUT
    # the device's own answer, delivered twice (at least once): the first one is kept
    stage.device_answers("pump-1", CommandResponse(request_id, "ping", True, {"n": 1}))
    stage.device_answers("pump-1", CommandResponse(request_id, "ping", False, error="again"))
    stage.consume()
    kept = bytes(stage.answer_item(request_id)["answer"]["B"])
    assert kept == CommandResponse(request_id, "ping", True, {"n": 1}).encode()
