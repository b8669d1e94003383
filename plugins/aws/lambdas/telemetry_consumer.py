"""Lambda ``telemetry_consumer``: the Kinesis stream the IoT rules fill
(plugins/aws/stream/rule.py) into history, the registry and the alert engine.

Event source: ``iot-telemetry-stream-{stage}``, with ``ReportBatchItemFailures``
(``bisectBatchOnFunctionError`` is not needed: a failure is reported per
record). Each record goes through ``StreamConsumer.handle``
(plugins/aws/stream/consumer.py):

- **bad data** (a payload the hub's decoder refuses, an unknown or retired
  device, a duplicate, a record that is not the rule's): quarantined in
  ``iot-quarantine-{stage}`` with the reason, and the record is done — never
  a batch item failure, because retrying bytes cannot change them;
- **a transient failure** (throttling, a service error, the network, state
  another consumer changed): a batch item failure; Lambda retries the shard
  from the lowest failed record, and what was applied already is skipped by
  its Kinesis position (replays change nothing).

Metrics go out as CloudWatch embedded metric format (namespace ``SmartIoT``,
service ``telemetry-consumer``).
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import (
    KinesisStreamRecord,
)

from plugins.aws.lambdas import environment as env
from plugins.aws.stream.consumer import Counters, StreamConsumer
from plugins.aws.stream.failures import TransientFailure
from plugins.aws.stream.records import StreamRecord

SERVICE = "telemetry-consumer"
NAMESPACE = "SmartIoT"

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)


@functools.lru_cache(maxsize=4)
def _consumer(stage: str, region: str, endpoint_url: str, telemetry: str, queue_url: str,
              registration: str) -> StreamConsumer:
    """Built once per container (and per configuration, for the tests)."""
    from plugins.aws.settings import AwsSettings
    from plugins.aws.stream.wiring import build_consumer

    settings = AwsSettings(region=region, stage=stage, endpoint_url=endpoint_url)
    return build_consumer(settings, telemetry=telemetry, queue_url=queue_url,
                          registration=registration)


def consumer_from_environment() -> StreamConsumer:
    endpoint = env.read(env.ENDPOINT_URL)
    return _consumer(env.read(env.STAGE, "dev"),
                     env.read(env.REGION, "us-east-1" if endpoint else ""), endpoint,
                     env.read(env.TELEMETRY, "dynamodb"), env.read(env.NOTIFY_QUEUE_URL),
                     env.read(env.REGISTRATION))


def handle_event(consumer: StreamConsumer, event: dict[str, Any],
                 context: Any = None) -> dict[str, Any]:
    """One Kinesis event through ``consumer``; Lambda's partial batch response.

    The consumer applies the batch as a whole (history once per batch, state
    once per device); Powertools' batch processor then reports, record by
    record, the ones it could not apply."""
    records = [StreamRecord(r["kinesis"]["sequenceNumber"], r["kinesis"]["partitionKey"],
                            KinesisStreamRecord(r).kinesis.data_as_bytes())
               for r in event.get("Records", [])]
    before = _snapshot(consumer.counters)
    failed = consumer.handle_batch(records)

    def record_handler(record: KinesisStreamRecord) -> None:
        why = failed.get(record.kinesis.sequence_number)
        if why is not None:
            raise TransientFailure(f"{type(why).__name__}: {why}") from why

    # a batch whose every record failed is answered like any other (each record
    # listed), not with an exception that would also count as a function error
    processor = BatchProcessor(event_type=EventType.KinesisDataStreams,
                               raise_on_entire_batch_failure=False)
    answer = dict(process_partial_response(event=event, record_handler=record_handler,
                                           processor=processor, context=context))
    _emit(before, _snapshot(consumer.counters))
    return answer


def _snapshot(c: Counters) -> dict[str, int]:
    return {"RecordsApplied": c.applied, "RecordsReplayed": c.replayed,
            "ReadingsStored": c.readings, "MessagesQuarantined": c.quarantined,
            "BadRecords": c.bad_records, "RecordsRetried": c.failed,
            "AlertsRaised": c.alerts_raised, "AlertsResolved": c.alerts_resolved,
            "CommandAnswersSkipped": c.command_answers_skipped}


def _emit(before: dict[str, int], after: dict[str, int]) -> None:
    for name, value in after.items():
        if value - before[name]:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value - before[name])


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Kinesis event in; ``{"batchItemFailures": [{"itemIdentifier":
    sequence number}, ...]}`` out, naming the records to retry."""
    try:
        return handle_event(consumer_from_environment(), event, context)
    finally:
        metrics.flush_metrics()
