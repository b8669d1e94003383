"""Lambda's event source mappings, run locally: they poll Kinesis and SQS
and call a handler with the event Lambda would build, honouring its answer.

- **Kinesis** (one poller per shard, as Lambda runs one batch per shard at a
  time): GetShardIterator at the starting position, GetRecords gathered up to
  the batch size or for the batch window, an event of ``Records[].kinesis``
  with base64 data. With ``ReportBatchItemFailures`` the
  handler answers ``{"batchItemFailures": [{"itemIdentifier": <sequence
  number>}]}``; the batch is then retried from the first failed record, and
  records before it count as done. A handler that raises gets the whole batch
  again, or with ``BisectBatchOnFunctionError`` each half on its own. After
  ``max_retries`` a batch is given up and described on the on-failure
  destination, as are records older than ``MaximumRecordAgeInSeconds``.
- **SQS**: ReceiveMessage (long poll), an event of ``Records[]`` with the body;
  messages the handler did not report as failed are deleted, the failed ones
  come back after their visibility timeout (then the queue's redrive policy).

The handler runs in this process, so the sandbox's tests and a person watching
its log see a handler's exception as it happens."""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """What Lambda hands a handler as ``context`` (Powertools reads these)."""

    function_name: str
    region: str
    timeout_s: float = 60.0
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:123456789012:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"sandbox/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))


@dataclass
class MappingStats:
    invocations: int = 0
    records: int = 0  # records (messages) handed over and finished: done or skipped
    failed_items: int = 0  # reported in batchItemFailures
    errors: int = 0  # invocations that raised
    skipped: int = 0  # records given up after max_retries
    last_error: str = ""


def failed_items(answer: Any) -> list[str]:
    """The item identifiers of a partial batch response (anything else: none)."""
    if not isinstance(answer, dict):
        return []
    items = answer.get("batchItemFailures") or []
    return [str(item.get("itemIdentifier")) for item in items if isinstance(item, dict)]


class _Poller:
    def __init__(self, name: str, handler: Handler, region: str) -> None:
        self.name = name
        self.handler = handler
        self.region = region
        self.stats = MappingStats()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _invoke(self, event: dict[str, Any]) -> tuple[bool, list[str]]:
        """(it returned, the failed item ids)."""
        context = LambdaContext(self.name, self.region)
        with self._lock:
            self.stats.invocations += 1
        try:
            return True, failed_items(self.handler(event, context))
        except Exception as exc:  # Lambda reports it and retries the batch
            log.exception("%s failed on a batch of %d records", self.name, len(event["Records"]))
            with self._lock:
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
            return False, []

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True,
                                  name=f"esm-{self.name}-{len(self._threads)}")
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=15)


class KinesisEventSource(_Poller):
    def __init__(self, kinesis: Any, stream: str, handler: Handler, *, function_name: str,
                 region: str, batch_size: int = 100, poll_s: float = 0.25,
                 max_retries: int = 5, retry_delay_s: float = 0.2,
                 starting_position: str = "TRIM_HORIZON",
                 on_failure: Callable[[dict[str, Any]], None] | None = None,
                 bisect: bool = False, max_record_age_s: float | None = None,
                 batch_window_s: float = 0.0) -> None:
        """``starting_position``: where a shard is first read, ``TRIM_HORIZON``
        (everything the stream holds) or ``LATEST`` (what arrives from now).
        ``on_failure`` gets Lambda's description of each batch given up (the
        mapping's on-failure destination: shard and sequence range, not the
        records, which stay in the stream for their retention period).
        ``bisect``: a batch whose invocation raises is split in halves, each
        retried on its own; ``max_record_age_s``: older records are given up;
        ``batch_window_s``: how long records are gathered, from the first one
        read, before a batch smaller than ``batch_size`` is handed over."""
        super().__init__(function_name, handler, region)
        self.on_failure = on_failure
        self.bisect = bisect
        self.max_record_age_s = max_record_age_s
        self.batch_window_s = batch_window_s
        if starting_position not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError(f"starting position {starting_position!r} must be TRIM_HORIZON "
                             "or LATEST")
        self.starting_position = starting_position
        self.kinesis = kinesis
        self.stream = stream
        self.batch_size = batch_size
        self.poll_s = poll_s
        self.max_retries = max_retries
        self.retry_delay_s = retry_delay_s
        self.stream_arn = ""

    def start(self) -> KinesisEventSource:
        summary = self.kinesis.describe_stream_summary(StreamName=self.stream)
        self.stream_arn = summary["StreamDescriptionSummary"]["StreamARN"]
        shards = self.kinesis.list_shards(StreamName=self.stream)["Shards"]
        for shard in shards:
            self._spawn(self._poll_shard, shard["ShardId"])
        return self

    def _iterator(self, shard_id: str, after: str | None) -> str:
        kind = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
                if after else {"ShardIteratorType": self.starting_position})
        answer = self.kinesis.get_shard_iterator(StreamName=self.stream, ShardId=shard_id, **kind)
        return str(answer["ShardIterator"])

    def _poll_shard(self, shard_id: str) -> None:
        checkpoint: str | None = None  # the last sequence number finished
        iterator: str | None = None
        batch: list[dict[str, Any]] = []  # read, not yet handed over (batch window)
        first_read = 0.0
        while not self._stopping.is_set():
            try:
                if iterator is None:
                    iterator = self._iterator(shard_id, checkpoint)
                answer = self.kinesis.get_records(ShardIterator=iterator,
                                                  Limit=self.batch_size - len(batch))
            except Exception as exc:  # noqa: BLE001 - expired iterator, endpoint away: re-read
                if self._stopping.is_set():
                    return
                log.warning("%s: reading shard %s failed (%s); retrying", self.name, shard_id, exc)
                iterator, batch = None, []  # read again from the checkpoint
                self._stopping.wait(1.0)
                continue
            iterator = answer.get("NextShardIterator")
            records = answer.get("Records") or []
            if records and not batch:
                first_read = time.monotonic()
            batch += records
            due = (len(batch) >= self.batch_size or iterator is None
                   or time.monotonic() - first_read >= self.batch_window_s)
            if batch and due:
                checkpoint = self._deliver(shard_id, batch)
                batch = []
            if iterator is None:  # a closed shard, read to its end
                return
            if not records or batch:
                self._stopping.wait(self.poll_s)

    def _event(self, shard_id: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Records": [{
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": record["PartitionKey"],
                "sequenceNumber": record["SequenceNumber"],
                "data": base64.b64encode(record["Data"]).decode("ascii"),
                "approximateArrivalTimestamp": _epoch(record.get("ApproximateArrivalTimestamp")),
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{shard_id}:{record['SequenceNumber']}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": f"arn:aws:iam::123456789012:role/{self.name}",
            "awsRegion": self.region,
            "eventSourceARN": self.stream_arn,
        } for record in records]}

    def _deliver(self, shard_id: str, records: list[dict[str, Any]]) -> str:
        """Hands ``records`` over until all are done (or given up); returns the
        last one's sequence number, the shard's new checkpoint."""
        last = str(records[-1]["SequenceNumber"])
        records = self._drop_expired(shard_id, records)
        if records:
            self._hand_over(shard_id, records)
        return last

    def _drop_expired(self, shard_id: str, records: list[dict[str, Any]]
                      ) -> list[dict[str, Any]]:
        """``maximumRecordAgeInSeconds``: records older are not handed over
        but described on the on-failure destination."""
        if self.max_record_age_s is None:
            return records
        oldest = time.time() - self.max_record_age_s
        expired = [r for r in records
                   if _epoch(r.get("ApproximateArrivalTimestamp")) < oldest]
        if expired:
            log.error("%s: %d records of shard %s are older than %.0f s; not delivered",
                      self.name, len(expired), shard_id, self.max_record_age_s)
            self._give_up(shard_id, expired, 0, "RecordAgeExceeded")
        gone = {id(r) for r in expired}
        return [r for r in records if id(r) not in gone]

    def _hand_over(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        attempt = 0
        while records:
            returned, failed = self._invoke(self._event(shard_id, records))
            if returned and not failed:
                with self._lock:
                    self.stats.records += len(records)
                return
            if returned:
                sequence = [r["SequenceNumber"] for r in records]
                known = [sequence.index(item) for item in failed if item in sequence]
                # An identifier that is no record of the batch fails the whole
                # batch, as Lambda does.
                first = min(known) if len(known) == len(failed) else 0
                with self._lock:
                    self.stats.records += first
                    self.stats.failed_items += len(failed)
                records = records[first:]
            elif self.bisect and len(records) > 1 and not self._stopping.is_set():
                # bisectBatchOnFunctionError: each half on its own, so one bad
                # record holds back only itself (a split costs no retry)
                half = len(records) // 2
                self._hand_over(shard_id, records[:half])
                self._hand_over(shard_id, records[half:])
                return
            attempt += 1
            if attempt > self.max_retries or self._stopping.is_set():
                log.error("%s: gave up on %d records of shard %s after %d attempts",
                          self.name, len(records), shard_id, attempt)
                self._give_up(shard_id, records, attempt, "RetryAttemptsExhausted")
                return
            self._stopping.wait(self.retry_delay_s * 2 ** (attempt - 1))

    def _give_up(self, shard_id: str, records: list[dict[str, Any]], attempts: int,
                 condition: str) -> None:
        with self._lock:
            self.stats.skipped += len(records)
            self.stats.records += len(records)
        if self.on_failure is not None and not self._stopping.is_set():
            self._report(shard_id, records, attempts, condition)

    def _report(self, shard_id: str, records: list[dict[str, Any]], attempts: int,
                condition: str) -> None:
        """Lambda's invocation record for a Kinesis batch it gave up."""
        assert self.on_failure is not None
        arrived = [_epoch(r.get("ApproximateArrivalTimestamp")) for r in records]
        try:
            self.on_failure({
                "requestContext": {
                    "requestId": str(uuid.uuid4()), "condition": condition,
                    "functionArn": LambdaContext(self.name, self.region).invoked_function_arn,
                    "approximateInvokeCount": attempts},
                "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                                    "functionError": "Unhandled"},
                "version": "1.0",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "KinesisBatchInfo": {
                    "shardId": shard_id,
                    "startSequenceNumber": records[0]["SequenceNumber"],
                    "endSequenceNumber": records[-1]["SequenceNumber"],
                    "approximateArrivalOfFirstRecord": _iso(min(arrived)),
                    "approximateArrivalOfLastRecord": _iso(max(arrived)),
                    "batchSize": len(records),
                    "streamArn": self.stream_arn}})
        except Exception:  # the destination is away: the log line above remains
            log.exception("%s: could not describe the failed batch at its destination",
                          self.name)


def _iso(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s)) + \
        f".{int(epoch_s * 1000) % 1000:03d}Z"


def _epoch(value: Any) -> float:
    if value is None:
        return time.time()
    timestamp = getattr(value, "timestamp", None)
    return float(timestamp()) if callable(timestamp) else float(value)


class SqsEventSource(_Poller):
    def __init__(self, sqs: Any, queue_url: str, handler: Handler, *, function_name: str,
                 region: str, batch_size: int = 10, wait_s: int = 1) -> None:
        super().__init__(function_name, handler, region)
        self.sqs = sqs
        self.queue_url = queue_url
        self.batch_size = batch_size
        self.wait_s = wait_s
        self.queue_arn = ""

    def start(self) -> SqsEventSource:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url,
                                                   AttributeNames=["QueueArn"])
        self.queue_arn = attributes["Attributes"]["QueueArn"]
        self._spawn(self._poll)
        return self

    def _poll(self) -> None:
        while not self._stopping.is_set():
            try:
                answer = self.sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size,
                    WaitTimeSeconds=self.wait_s, AttributeNames=["All"],
                    MessageAttributeNames=["All"])
            except Exception as exc:  # noqa: BLE001 - the endpoint is away: poll again
                if self._stopping.is_set():
                    return
                log.warning("%s: ReceiveMessage failed (%s); retrying", self.name, exc)
                self._stopping.wait(1.0)
                continue
            messages = answer.get("Messages") or []
            if messages:
                self._deliver(messages)

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [{
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": {
                name: {"stringValue": value.get("StringValue"),
                       "dataType": value.get("DataType", "String")}
                for name, value in (m.get("MessageAttributes") or {}).items()},
            "md5OfBody": m.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        } for m in messages]}
        returned, failed = self._invoke(event)
        if not returned:
            return  # every message comes back after its visibility timeout
        done = [m for m in messages if m["MessageId"] not in set(failed)]
        with self._lock:
            self.stats.records += len(done)
            self.stats.failed_items += len(messages) - len(done)
        if done:
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
