"""The simulated stream, its run through the local hub's ingest path, and a
stage with a real Kinesis stream for the consumer (used by
test_stream_consumer*.py).

The same messages go both ways: the simulator's fleet (three environmental
sensors, one pushed over the temperature limit for a minute, with malformed
and duplicated publishes) as (topic, payload, received time). The local side
is the hub's own ingest path minus MQTT — ``Ingestor.process`` on batches,
the SQLite store, the hub's alert engine — so any difference is the AWS side's.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from core.ingest.ingestor import Inbound, Ingestor
from core.ingest.registry_cache import RegistryCache
from core.model.timeutil import from_epoch_ms
from core.ports.alerts import AlertQuery
from core.protocol.payloads import Status
from core.protocol.topics import status_topic
from core.services.alerting.builtin import BUILTIN_RULE_TYPES
from core.services.alerting.defaults import default_rules
from core.store import Store
from plugins.aws.stream.rule import partition_key, rule_record
from simulator.faults import FaultPlan, FaultSpec
from simulator.fleet import DeviceGroup, Fleet

ORG = "acme"
INTERVAL_S = 5.0
DURATION_S = 180.0
# a bad device id on a topic IoT Core delivers (MQTT allows it; the protocol does not)
HOSTILE = ("dt/acme/bad id!/telemetry", b'{"seq": 1}')


@functools.lru_cache(maxsize=1)
def simulated_stream() -> tuple[Inbound, ...]:
    """What IoT Core would receive, in order (status and telemetry, as the two
    rules forward them); the start is an hour ago so every time is a plausible
    one for the decoder and the stores."""
    start_s = float(int(time.time()) - 3600)
    fleet = Fleet(
        [DeviceGroup("env", "environmental", 3, org=ORG, interval_s=INTERVAL_S)], seed=7,
        start_s=start_s,
        faults=FaultPlan([
            FaultSpec("out_of_range", {"value": 45.0, "metrics": ["temperature"]},
                      start_s=60, duration_s=60, devices=[0]),
            FaultSpec("malformed", {"p": 0.04}),
            FaultSpec("duplicate", {"p": 0.04}),
        ]))
    out = [Inbound(fleet.topic(device), payload, round(t_s * 1000) + 40)
           for t_s, device, payload in fleet.generate(DURATION_S, INTERVAL_S)]
    out.insert(len(out) // 2, Inbound(HOSTILE[0], HOSTILE[1], out[len(out) // 2].received_ms))
    # each device says it is online when it connects; the last one's Last Will at the end
    first_ms = out[0].received_ms
    hello = [Inbound(status_topic(ORG, d), Status("online", first_ms - 1000, "environmental",
                                                   "1.0.0").encode(), first_ms - 500)
             for d in fleet.device_ids]
    gone = Inbound(status_topic(ORG, fleet.device_ids[-1]),
                   Status("offline", None, reason="connection lost").encode(),
                   out[-1].received_ms + 1000)
    return (*hello, *out, gone)


# ---------------------------------------------------------------- the outcome, comparable

AlertKey = tuple[Any, ...]


def alert_outcome(alerts: Any) -> list[AlertKey]:
    return sorted((a.device_id, a.rule_id, a.severity.value, a.state.value, a.created_at,
                   a.resolved_at, a.message, a.value) for a in alerts.list(AlertQuery()))


def history(telemetry: Any, stream: tuple[Inbound, ...],
            devices: list[str], metrics: list[str]) -> dict[tuple[str, str], list[Any]]:
    start = from_epoch_ms(stream[0].received_ms) - timedelta(minutes=1)
    end = from_epoch_ms(stream[-1].received_ms) + timedelta(minutes=1)
    out = {}
    for device in devices:
        for metric in metrics:
            series = telemetry.query(device, metric, start, end)
            out[(device, metric)] = list(zip(series.ts_ms.tolist(), series.value.tolist(),
                                             strict=True))
    return out


def quarantine_outcome(quarantine: Any) -> list[tuple[str, str | None, str, bytes]]:
    return sorted((q.reason, q.device_id, q.topic, q.payload)
                  for q in quarantine.list(limit=10_000))


def registry_outcome(registry: Any) -> list[tuple[Any, ...]]:
    return sorted((d.device_id, d.organization, d.device_type, d.status.value,
                   d.firmware_version) for d in registry.list())


class LocalHubPath:
    """The hub's ingest path over SQLite: ingest a batch, write history, the
    registry and the quarantine, then the alert engine per device — as
    ``Hub._write_pending`` does; ``housekeeping`` as ``Hub._housekeeping``."""

    def __init__(self, db: Path) -> None:
        from plugins.local.alerting import HubAlerting

        self.store = Store.open(f"sqlite:///{db}")
        for rule in default_rules():
            self.store.rules.add(rule)
        self.cache = RegistryCache(self.store.registry)
        self.cache.load()
        self.ingestor = Ingestor(self.cache)
        self.alerting = HubAlerting(self.store, dict(BUILTIN_RULE_TYPES))

    def ingest(self, stream: tuple[Inbound, ...], *, batch: int = 10) -> None:
        for i in range(0, len(stream), batch):
            chunk = list(stream[i:i + batch])
            result = self.ingestor.process(chunk, chunk[-1].received_ms)
            self.store.telemetry.write_batch(result.readings)
            self.cache.flush()
            self.store.quarantine.add_many(result.quarantined)
            for device_id, readings in result.by_device.items():
                device = self.cache.get(device_id)
                assert device is not None
                self.alerting.process(device, readings)

    def housekeeping(self, now: datetime, stale_after: timedelta) -> None:
        self.cache.mark_stale(now, stale_after)
        self.cache.flush()
        self.alerting.set_devices(self.cache.all())
        self.alerting.tick(now)


def run_local_hub(stream: tuple[Inbound, ...], db: Path) -> Store:
    """The stream through :class:`LocalHubPath`; the caller closes the store."""
    hub = LocalHubPath(db)
    hub.ingest(stream)
    return hub.store


# ---------------------------------------------------------------- the AWS side


def create_stream(kinesis: Any, name: str, shards: int = 2) -> None:
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=name,
                                             WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})


def publish(kinesis: Any, name: str, stream: tuple[Inbound, ...]) -> None:
    """What the IoT rules' Kinesis action puts on the stream for each message
    (in PutRecords batches, as the sandbox's stand-in rule sends them)."""
    entries = [{"Data": rule_record(m.topic, m.payload, m.received_ms),
                "PartitionKey": partition_key(m.topic) or "-"} for m in stream]
    for i in range(0, len(entries), 500):
        answer = kinesis.put_records(StreamName=name, Records=entries[i:i + 500])
        assert answer.get("FailedRecordCount", 0) == 0


def drain_queue(sqs: Any, url: str) -> list[str]:
    bodies: list[str] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return bodies
        for m in messages:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def records_of(kinesis: Any, name: str) -> Iterator[dict[str, Any]]:
    """Every record on the stream, shard by shard (for replays)."""
    for shard in kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
        yield from ({**r, "ShardId": shard["ShardId"]} for r in page["Records"])


Invoke = Callable[[dict[str, Any], Any], dict[str, Any]]
