"""The sandbox's stand-ins for Lambda's event source mappings, on moto's
Kinesis and SQS over HTTP: the event each handler gets is the shape Lambda
builds, and a partial batch failure is retried from the first failed record
(Kinesis) or leaves only the failed message on the queue (SQS)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from plugins.aws.sandbox.event_sources import KinesisEventSource, SqsEventSource
from tests.integration.aws.conftest import AwsSandbox


def wait_until(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class Recorder:
    """A handler: keeps every event; ``answer`` decides what it returns."""

    def __init__(self, answer: Callable[[list[dict[str, Any]], int], Any]) -> None:
        self.answer = answer
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        assert context.function_name == "consumer"
        assert context.get_remaining_time_in_millis() > 0
        with self.lock:
            self.events.append(event)
            call = len(self.events)
        return self.answer(event["Records"], call)

    def payloads(self, call: int) -> list[int]:
        return [json.loads(base64.b64decode(r["kinesis"]["data"]))["n"]
                for r in self.events[call]["Records"]]


@pytest.fixture
def stream(aws: AwsSandbox) -> Iterator[tuple[Any, str]]:
    kinesis = aws.client("kinesis")
    name = f"telemetry-{aws.stage}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=name,
                                             WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    yield kinesis, name


def put(kinesis: Any, name: str, numbers: range) -> None:
    kinesis.put_records(StreamName=name, Records=[
        {"Data": json.dumps({"n": n}).encode(), "PartitionKey": "pump-1"} for n in numbers])


def start_kinesis(kinesis: Any, name: str, handler: Recorder) -> KinesisEventSource:
    return KinesisEventSource(kinesis, name, handler, function_name="consumer",
                              region="eu-west-1", batch_size=100, poll_s=0.05,
                              retry_delay_s=0.01).start()


def test_kinesis_event_has_lambdas_shape(stream: tuple[Any, str]) -> None:
    kinesis, name = stream
    put(kinesis, name, range(3))
    handler = Recorder(lambda records, call: {"batchItemFailures": []})
    mapping = start_kinesis(kinesis, name, handler)
    try:
        wait_until(lambda: mapping.stats.records == 3)
    finally:
        mapping.stop()
    record = handler.events[0]["Records"][0]
    assert record["eventSource"] == "aws:kinesis"
    assert record["eventName"] == "aws:kinesis:record"
    assert record["eventSourceARN"].endswith(f":stream/{name}")
    assert record["eventID"] == f"shardId-000000000000:{record['kinesis']['sequenceNumber']}"
    assert record["kinesis"]["partitionKey"] == "pump-1"
    assert isinstance(record["kinesis"]["approximateArrivalTimestamp"], float)
    assert handler.payloads(0) == [0, 1, 2]


def test_kinesis_partial_failure_retries_from_the_first_failed_record(
        stream: tuple[Any, str]) -> None:
    kinesis, name = stream
    put(kinesis, name, range(6))

    def answer(records: list[dict[str, Any]], call: int) -> Any:
        if call == 1:  # records 3 and 5 fail: the retry starts at 3
            return {"batchItemFailures": [
                {"itemIdentifier": records[5]["kinesis"]["sequenceNumber"]},
                {"itemIdentifier": records[3]["kinesis"]["sequenceNumber"]}]}
        return {"batchItemFailures": []}

    handler = Recorder(answer)
    mapping = start_kinesis(kinesis, name, handler)
    try:
        wait_until(lambda: mapping.stats.records == 6)
        put(kinesis, name, range(6, 8))  # later records come after the retried ones
        wait_until(lambda: mapping.stats.records == 8)
    finally:
        mapping.stop()
    assert handler.payloads(0) == [0, 1, 2, 3, 4, 5]
    assert handler.payloads(1) == [3, 4, 5]
    assert handler.payloads(2) == [6, 7]
    assert mapping.stats.failed_items == 2 and mapping.stats.skipped == 0


def test_kinesis_handler_error_retries_the_batch_then_gives_up(stream: tuple[Any, str]) -> None:
    kinesis, name = stream
    put(kinesis, name, range(2))

    def answer(records: list[dict[str, Any]], call: int) -> Any:
        if call == 1:
            raise RuntimeError("table not ready")
        if any(json.loads(base64.b64decode(r["kinesis"]["data"]))["n"] == 2 for r in records):
            raise RuntimeError("poison record")
        return None  # a handler without partial responses: all done

    handler = Recorder(answer)
    given_up: list[dict[str, Any]] = []
    mapping = start_kinesis(kinesis, name, handler)
    mapping.max_retries = 2
    mapping.on_failure = given_up.append
    try:
        wait_until(lambda: mapping.stats.records == 2)
        put(kinesis, name, range(2, 4))  # 2 always fails: its batch is given up
        wait_until(lambda: mapping.stats.skipped == 2)
        put(kinesis, name, range(4, 5))  # and the shard moves on
        wait_until(lambda: mapping.stats.records == 5)
    finally:
        mapping.stop()
    assert handler.payloads(0) == handler.payloads(1) == [0, 1]
    later = [handler.payloads(i) for i in range(2, len(handler.events))]
    assert later == [[2, 3]] * 3 + [[4]]  # the first try and max_retries more
    assert mapping.stats.errors == 4 and "poison record" in mapping.stats.last_error
    # the on-failure destination gets Lambda's description of the batch, not its records
    poisoned = handler.events[2]["Records"]
    (described,) = given_up
    assert described["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert described["requestContext"]["approximateInvokeCount"] == 3
    assert described["KinesisBatchInfo"]["batchSize"] == 2
    assert described["KinesisBatchInfo"]["startSequenceNumber"] == \
        poisoned[0]["kinesis"]["sequenceNumber"]
    assert described["KinesisBatchInfo"]["endSequenceNumber"] == \
        poisoned[1]["kinesis"]["sequenceNumber"]
    assert described["KinesisBatchInfo"]["streamArn"] == mapping.stream_arn


def test_sqs_deletes_what_was_handled_and_keeps_a_failed_message(aws: AwsSandbox) -> None:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=f"notify-{aws.stage}",
                           Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    seen: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> Any:
        seen.extend(r["body"] for r in event["Records"])
        assert {r["eventSource"] for r in event["Records"]} == {"aws:sqs"}
        failed = [r["messageId"] for r in event["Records"]
                  if r["body"] == "b" and seen.count("b") == 1]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}

    mapping = SqsEventSource(sqs, url, handler, function_name="notify",
                             region=aws.region).start()
    try:
        wait_until(lambda: mapping.stats.records == 3)
    finally:
        mapping.stop()
    assert sorted(seen) == ["a", "b", "b", "c"]  # b came back after its visibility timeout
    assert mapping.stats.failed_items == 1
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def numbers(records: list[dict[str, Any]]) -> list[int]:
    return [json.loads(base64.b64decode(r["kinesis"]["data"]))["n"] for r in records]


def test_bisect_isolates_the_record_that_makes_the_handler_fail(
        stream: tuple[Any, str]) -> None:
    kinesis, name = stream
    put(kinesis, name, range(8))

    def answer(records: list[dict[str, Any]], call: int) -> Any:
        if 5 in numbers(records):
            raise RuntimeError("record 5 breaks the handler")
        return {"batchItemFailures": []}

    handler = Recorder(answer)
    given_up: list[dict[str, Any]] = []
    mapping = KinesisEventSource(kinesis, name, handler, function_name="consumer",
                                 region="eu-west-1", poll_s=0.05, retry_delay_s=0.01,
                                 max_retries=1, bisect=True, on_failure=given_up.append)
    mapping.start()
    try:
        wait_until(lambda: mapping.stats.records == 8)
    finally:
        mapping.stop()
    batches = [numbers(e["Records"]) for e in handler.events]
    assert batches == [[0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3], [4, 5, 6, 7], [4, 5], [4],
                       [5], [5], [6, 7]]
    (described,) = given_up
    assert described["KinesisBatchInfo"]["batchSize"] == 1
    assert mapping.stats.skipped == 1


def test_records_older_than_the_maximum_age_are_given_up_unread(
        stream: tuple[Any, str]) -> None:
    kinesis, name = stream
    put(kinesis, name, range(2))
    time.sleep(1.2)  # they age past the limit before the mapping reads them
    handler = Recorder(lambda records, call: None)
    given_up: list[dict[str, Any]] = []
    mapping = KinesisEventSource(kinesis, name, handler, function_name="consumer",
                                 region="eu-west-1", poll_s=0.05, max_record_age_s=1.0,
                                 on_failure=given_up.append)
    mapping.start()
    try:
        wait_until(lambda: mapping.stats.records == 2)
        put(kinesis, name, range(2, 3))  # a fresh one is delivered
        wait_until(lambda: mapping.stats.records == 3)
    finally:
        mapping.stop()
    assert [numbers(e["Records"]) for e in handler.events] == [[2]]
    (described,) = given_up
    assert described["requestContext"]["condition"] == "RecordAgeExceeded"
    assert described["KinesisBatchInfo"]["batchSize"] == 2


def test_the_batch_window_gathers_records_into_one_invocation(
        stream: tuple[Any, str]) -> None:
    kinesis, name = stream
    handler = Recorder(lambda records, call: None)
    mapping = KinesisEventSource(kinesis, name, handler, function_name="consumer",
                                 region="eu-west-1", poll_s=0.05, batch_window_s=1.5)
    mapping.start()
    try:
        for n in range(3):  # three puts within the window
            put(kinesis, name, range(n, n + 1))
            time.sleep(0.2)
        wait_until(lambda: mapping.stats.records == 3)
    finally:
        mapping.stop()
    assert [numbers(e["Records"]) for e in handler.events] == [[0, 1, 2]]
