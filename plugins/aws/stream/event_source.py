"""Lambda's Kinesis event source mapping, played locally: read a stream shard
by shard and hand the consumer the event Lambda would.

For the sandbox (moto has no event source mappings) and the tests. It keeps
Lambda's contract: records of one shard in order, a batch at a time, and on
``batchItemFailures`` the shard resumes from the lowest failed sequence
number — the records after it come again, as on AWS.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[dict[str, Any], Any], dict[str, Any] | None]


def kinesis_event(records: list[dict[str, Any]], stream_arn: str, region: str,
                  shard_id: str) -> dict[str, Any]:
    """Lambda's event for GetRecords ``records`` of one shard."""
    return {"Records": [{
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": r["PartitionKey"],
            "sequenceNumber": r["SequenceNumber"],
            "data": base64.b64encode(r["Data"]).decode("ascii"),
            "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{r['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/iot-telemetry-consumer",
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    } for r in records]}


@dataclass
class _Shard:
    shard_id: str
    after: str | None = None  # the last sequence number the consumer finished
    pending: list[dict[str, Any]] = field(default_factory=list)


class KinesisEventSource:
    """``poll()`` reads what is new on every shard and invokes ``handler`` with
    batches of at most ``batch_size``; returns the number of records handed over."""

    def __init__(self, kinesis: Any, stream_name: str, handler: Handler, *,
                 batch_size: int = 100, region: str = "us-east-1") -> None:
        self._kinesis = kinesis
        self._stream = stream_name
        self._handler = handler
        self._batch = batch_size
        self._region = region
        description = kinesis.describe_stream(StreamName=stream_name)["StreamDescription"]
        self._arn = description["StreamARN"]
        self._shards = [_Shard(s["ShardId"]) for s in description["Shards"]]
        self.invocations = 0
        self.retries = 0

    def poll(self) -> int:
        handed = 0
        for shard in self._shards:
            shard.pending.extend(self._read(shard))
            while shard.pending:
                batch = shard.pending[:self._batch]
                answer = self._handler(kinesis_event(batch, self._arn, self._region,
                                                     shard.shard_id), None) or {}
                self.invocations += 1
                handed += len(batch)
                failed = [f["itemIdentifier"] for f in answer.get("batchItemFailures", [])]
                if failed:
                    lowest = min(failed, key=int)
                    index = next(i for i, r in enumerate(batch) if r["SequenceNumber"] == lowest)
                    self.retries += 1
                    shard.after = batch[index - 1]["SequenceNumber"] if index else shard.after
                    shard.pending = shard.pending[index:]
                    return handed  # as Lambda: the shard waits, then retries from there
                shard.after = batch[-1]["SequenceNumber"]
                shard.pending = shard.pending[len(batch):]
        return handed

    def _read(self, shard: _Shard) -> Iterator[dict[str, Any]]:
        if shard.pending:
            return
        kwargs: dict[str, Any] = {"StreamName": self._stream, "ShardId": shard.shard_id}
        if shard.after is None:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                          StartingSequenceNumber=shard.after)
        iterator = self._kinesis.get_shard_iterator(**kwargs)["ShardIterator"]
        while iterator:
            page = self._kinesis.get_records(ShardIterator=iterator, Limit=1000)
            yield from page["Records"]
            if not page["Records"] or page.get("MillisBehindLatest", 0) == 0:
                return
            iterator = page.get("NextShardIterator")
