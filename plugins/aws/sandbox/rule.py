"""The stream rules' stand-in: what devices publish (telemetry and status) from
the sandbox's broker into Kinesis, as the rules' Kinesis action does on AWS
(partition key = the device id, so a device's messages stay in order on one
shard).

The record each message becomes is the rules' own ``SELECT`` result, built by
the stream package's function (plugins.aws.stream.rule, whose constants
serverless.yml declares), so the consumer sees in the sandbox what it sees on
AWS. Records are sent with
PutRecords in batches (up to 500 records, or what arrived within
``flush_s``); records Kinesis refuses in a batch are sent again, so a
throttled shard never loses a reading."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)

MAX_BATCH = 500  # PutRecords' limit per request
MAX_BATCH_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class RuleAction:
    """What the rules do: the topic filters they select from, and the record
    and partition key they put into Kinesis for a (topic, payload, received
    epoch ms)."""

    filters: tuple[str, ...]
    record: Callable[[str, bytes, int], bytes]
    partition_key: Callable[[str], str]


def iot_rules() -> RuleAction:
    """The rules as serverless.yml declares them (plugins.aws.stream.rule)."""
    from plugins.aws.stream import rule

    return RuleAction(tuple(rule.STREAM_FILTERS), rule.rule_record, rule.partition_key)


@dataclass
class ForwarderStats:
    received: int = 0
    forwarded: int = 0
    retried: int = 0  # records Kinesis refused once and that were sent again
    batches: int = 0


class TelemetryRule:
    """Subscribes to device telemetry on ``broker`` (host, port) and puts it
    into ``stream`` with ``kinesis`` (a boto3 client)."""

    def __init__(self, kinesis: Any, stream: str, broker: tuple[str, int], *,
                 rules: RuleAction | None = None, flush_s: float = 0.2) -> None:
        self.kinesis = kinesis
        self.stream = stream
        self.broker = broker
        self.rules = rules or iot_rules()
        self.flush_s = flush_s
        self.stats = ForwarderStats()
        self._pending: list[tuple[bytes, str]] = []
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                   client_id=f"sandbox-iot-rule-{uuid.uuid4().hex[:8]}")
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_message = self._on_message
        self._thread = threading.Thread(target=self._flush_loop, name="sandbox-iot-rule",
                                        daemon=True)

    def start(self, timeout_s: float = 10.0) -> TelemetryRule:
        self._client.connect(*self.broker, keepalive=30)
        self._client.loop_start()
        self._thread.start()
        if not self._subscribed.wait(timeout_s):
            self.stop()
            raise RuntimeError(f"the IoT rule stand-in could not subscribe to "
                               f"{', '.join(self.rules.filters)} on "
                               f"{self.broker[0]}:{self.broker[1]}")
        return self

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        client.subscribe([(f, 1) for f in self.rules.filters])  # again after a reconnect

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.stats.received += 1
        record = self.rules.record(message.topic, bytes(message.payload), int(time.time() * 1000))
        with self._lock:
            self._pending.append((record, self.rules.partition_key(message.topic)))
            if len(self._pending) >= MAX_BATCH:
                self._lock.notify()

    def _flush_loop(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                self._lock.wait_for(lambda: len(self._pending) >= MAX_BATCH
                                    or self._stopping.is_set(), timeout=self.flush_s)
                batch, self._pending = self._take_batch()
            if batch:
                self._put(batch)
        with self._lock:  # what arrived before the stop still goes in
            rest, self._pending = self._pending, []
        for start in range(0, len(rest), MAX_BATCH):
            self._put(rest[start:start + MAX_BATCH])

    def _take_batch(self) -> tuple[list[tuple[bytes, str]], list[tuple[bytes, str]]]:
        size = 0
        for count, (data, key) in enumerate(self._pending[:MAX_BATCH]):
            size += len(data) + len(key)
            if size > MAX_BATCH_BYTES:
                return self._pending[:count], self._pending[count:]
        return self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]

    def _put(self, batch: list[tuple[bytes, str]]) -> None:
        delay = 0.05
        while batch:
            try:
                answer = self.kinesis.put_records(
                    StreamName=self.stream,
                    Records=[{"Data": data, "PartitionKey": key} for data, key in batch])
            except Exception as exc:  # noqa: BLE001 - the endpoint is away: keep and retry
                if self._stopping.is_set() and delay > 1:
                    log.error("IoT rule: %d records not delivered to %s at shutdown: %s",
                              len(batch), self.stream, exc)
                    return
                log.warning("IoT rule: PutRecords to %s failed (%s); retrying", self.stream, exc)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            self.stats.batches += 1
            refused = [item for item, result in zip(batch, answer["Records"], strict=True)
                       if "ErrorCode" in result]
            self.stats.forwarded += len(batch) - len(refused)
            self.stats.retried += len(refused)
            batch = refused
            if batch:
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        self._stopping.set()
        with self._lock:
            self._lock.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
