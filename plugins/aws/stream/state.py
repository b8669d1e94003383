"""What the stream consumer remembers per device, in DynamoDB rather than in
the Lambda's memory: a cold start, or a device moving to another shard's
consumer, then carries on exactly where the last record left it.

- ``iot-stream-state-{stage}``: the Kinesis position of the device's last
  applied record and its seq accounting (core.model.LinkStats, with the boot
  state ``core.ingest.sequence`` restarts from). A record at or before the
  position is a replay and changes nothing.
- ``iot-alert-state-{stage}``: the alert engine's evaluator state for the
  device (``AlertEngine.export_state``: pending durations, hysteresis, rate
  windows), per rule and rule version.

Both are written with ``version = :expected`` (or ``attribute_not_exists``
for the first write): a consumer holding an older copy — two consumers on one
device around a reshard — loses the write and starts over from what is
stored instead of overwriting newer state (:class:`StaleState`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from typing import Any

from core.model import LinkStats
from core.model.timeutil import utcnow
from plugins.aws.dynamodb.codec import get_int, get_json, get_str, get_time, iso
from plugins.aws.settings import AwsSettings

STREAM_ROLE = "stream-state"
ALERT_ROLE = "alert-state"
_DEVICES_PER_GET = 50  # two keys each: BatchGetItem takes 100
_RETRIES = 8
_STATS_FIELDS = tuple(f.name for f in fields(LinkStats) if f.name not in ("device_id",
                                                                          "updated_at"))


class StaleState(Exception):
    """Another consumer wrote the device's state since this one read it."""


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """Where a device's records stand: the last applied Kinesis sequence number
    (as its decimal text: they are longer than DynamoDB's numbers), the item
    version, and the seq accounting."""

    sequence_number: str
    version: int
    stats: LinkStats

    @property
    def position(self) -> int:
        return int(self.sequence_number)


@dataclass(frozen=True, slots=True)
class SavedAlertState:
    version: int
    rules: dict[str, Any]
    #: alert changes written but not yet published (see alert_feed.Outbox)
    outbox: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class DeviceState:
    stream: StreamPosition | None
    alerts: SavedAlertState | None


class DeviceStateTables:
    def __init__(self, client: Any, settings: AwsSettings, *, stream: bool = True) -> None:
        """``stream=False``: the alert state only (the ticker, whose role does
        not name the stream-state table): devices load without a position."""
        self._db = client
        self._stream = settings.table(STREAM_ROLE) if stream else ""
        self._alerts = settings.table(ALERT_ROLE)

    def load(self, device_id: str) -> DeviceState:
        return self.load_many([device_id])[device_id]

    def load_many(self, device_ids: list[str]) -> dict[str, DeviceState]:
        """Both items of every device, 50 devices (100 keys) a BatchGetItem,
        strongly consistent (the state a previous invocation wrote a moment
        ago must be the one read)."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(device_ids), _DEVICES_PER_GET):
            keys = [{"device_id": {"S": d}} for d in device_ids[start:start + _DEVICES_PER_GET]]
            request: dict[str, Any] = {self._alerts: {"Keys": keys, "ConsistentRead": True}}
            if self._stream:
                request[self._stream] = {"Keys": keys, "ConsistentRead": True}
            for attempt in range(_RETRIES):
                answer = self._db.batch_get_item(RequestItems=request)
                for table, items in answer.get("Responses", {}).items():
                    for item in items:
                        found[(table, str(item["device_id"]["S"]))] = item
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2 ** attempt, 1.0))
            else:
                raise RuntimeError(f"DynamoDB left device state unread {_RETRIES} times")
        out = {}
        for device_id in device_ids:
            stream = found.get((self._stream, device_id))
            alerts = found.get((self._alerts, device_id))
            out[device_id] = DeviceState(
                None if stream is None else _position(device_id, stream),
                None if alerts is None else SavedAlertState(get_int(alerts, "version"),
                                                            get_json(alerts, "rules", {}),
                                                            get_json(alerts, "outbox", [])))
        return out

    def save_position(self, stats: LinkStats, sequence_number: str,
                      expected_version: int) -> int:
        """Record ``sequence_number`` as applied, with the seq accounting after it."""
        stats_doc = {name: getattr(stats, name) for name in _STATS_FIELDS}
        return self._put(self._stream, stats.device_id, expected_version, {
            "sequence_number": {"S": sequence_number},
            "stats": {"S": json.dumps(stats_doc, sort_keys=True)},
        })

    def save_alert_state(self, device_id: str, rules: dict[str, Any], expected_version: int,
                         outbox: list[dict[str, Any]] | None = None) -> int:
        """The engine state, and the alert changes still to be published with it:
        written in the same item, so a change is never stored without its
        notification (a retry finds it there and sends it)."""
        return self._put(self._alerts, device_id, expected_version,
                         {"rules": {"S": json.dumps(rules, sort_keys=True)},
                          "outbox": {"S": json.dumps(outbox or [], sort_keys=True)}})

    def _put(self, table: str, device_id: str, expected_version: int,
             attributes: dict[str, Any]) -> int:
        version = expected_version + 1
        item = dict(attributes, device_id={"S": device_id}, version={"N": str(version)},
                    updated_at={"S": iso(utcnow())})
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(device_id)"} if expected_version == 0
            else {"ConditionExpression": "version = :v",
                  "ExpressionAttributeValues": {":v": {"N": str(expected_version)}}})
        try:
            self._db.put_item(TableName=table, Item=item, **condition)
        except self._db.exceptions.ConditionalCheckFailedException:
            raise StaleState(f"the {table} item of {device_id} changed since version "
                             f"{expected_version} was read") from None
        return version


def _position(device_id: str, item: dict[str, Any]) -> StreamPosition:
    doc = get_json(item, "stats", {})
    known = {name: doc[name] for name in _STATS_FIELDS if name in doc}
    stats = LinkStats(device_id, updated_at=get_time(item, "updated_at") or utcnow(), **known)
    return StreamPosition(get_str(item, "sequence_number") or "0", get_int(item, "version"),
                          stats)

