"""Quarantine on DynamoDB: device messages the stream consumer refused, with
the reason, newest first (the ``QuarantineStore`` port the console's
Quarantine page reads).

``iot-quarantine-{stage}``: ``device_key`` (the device id, ``-`` for a message
naming none) and ``entry_key`` (receive time, then the Kinesis record and the
message's place in it), so a record written twice — a consumer that failed
after quarantining and ran the record again — is the same item, not two.
``ReasonIndex`` answers "all ``too_large``"; ``DayIndex`` (the UTC day) the
whole fleet's newest. Retention is TTL (30 days, as the SQL quarantine's
default age): nothing deletes rows, and ``purge_before`` has nothing to do.
"""

from __future__ import annotations

import builtins
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from core.model.link import QuarantinedMessage
from core.model.timeutil import utcnow
from core.ports.hub import QuarantineStore
from plugins.aws.dynamodb.codec import Item, get_str, get_time, iso, put_str, put_time
from plugins.aws.dynamodb.paging import query_items
from plugins.aws.settings import AwsSettings

ROLE = "quarantine"
REASON_INDEX = "ReasonIndex"
DAY_INDEX = "DayIndex"
NO_DEVICE = "-"
RETENTION = timedelta(days=30)
_BATCH = 25  # BatchWriteItem's limit
_RETRIES = 8


class DynamoQuarantineStore(QuarantineStore):
    def __init__(self, client: Any, settings: AwsSettings) -> None:
        self._db = client
        self._table = settings.table(ROLE)
        self._page = settings.page_size

    def add_many(self, messages: Sequence[QuarantinedMessage], *,
                 source: str | None = None) -> None:
        """``source`` names where the messages came from (a Kinesis sequence
        number): the same source and position give the same item."""
        origin = source or uuid.uuid4().hex
        self.add_from([(origin, m) for m in messages])

    def add_from(self, entries: Sequence[tuple[str, QuarantinedMessage]]) -> None:
        """Messages with their source each (a batch's records): the n-th
        message of a source is keyed ``{source}#{n}``, so writing the same
        entries again changes nothing."""
        seen: dict[str, int] = {}
        items = []
        for origin, m in entries:
            n = seen.get(origin, 0)
            seen[origin] = n + 1
            items.append(_to_item(m, f"{origin}#{n:04d}"))
        for start in range(0, len(items), _BATCH):
            self._write([{"PutRequest": {"Item": item}} for item in items[start:start + _BATCH]])

    def _write(self, requests: list[dict[str, Any]]) -> None:
        for attempt in range(_RETRIES):
            left = self._db.batch_write_item(RequestItems={self._table: requests}).get(
                "UnprocessedItems", {}).get(self._table)
            if not left:
                return
            requests = left
            time.sleep(min(0.05 * 2 ** attempt, 1.0))
        raise RuntimeError(f"{len(requests)} quarantine rows still unprocessed by DynamoDB "
                           f"after {_RETRIES} attempts")

    def list(self, *, limit: int = 500, reason: str | None = None,
             device_id: str | None = None) -> builtins.list[QuarantinedMessage]:
        """Newest first: one device's, one reason's, or the fleet's day by day."""
        out: builtins.list[QuarantinedMessage] = []
        for item in self._newest(reason, device_id):
            out.append(_to_domain(item))
            if len(out) >= limit:
                break
        return out

    def _newest(self, reason: str | None, device_id: str | None) -> Iterator[Item]:
        base = {"TableName": self._table, "ScanIndexForward": False}
        if device_id is not None:
            request: dict[str, Any] = dict(
                base, KeyConditionExpression="device_key = :d",
                ExpressionAttributeValues={":d": {"S": device_id}})
            if reason is not None:
                request["FilterExpression"] = "reason = :r"
                request["ExpressionAttributeValues"][":r"] = {"S": reason}
            yield from query_items(self._db, self._page, **request)
            return
        if reason is not None:
            yield from query_items(self._db, self._page, **dict(
                base, IndexName=REASON_INDEX, KeyConditionExpression="reason = :r",
                ExpressionAttributeValues={":r": {"S": reason}}))
            return
        today = utcnow()
        for back in range(RETENTION.days + 1):
            day = (today - timedelta(days=back)).strftime("%Y-%m-%d")
            yield from query_items(self._db, self._page, **dict(
                base, IndexName=DAY_INDEX, KeyConditionExpression="qday = :day",
                ExpressionAttributeValues={":day": {"S": day}}))

    def counts_by_reason(self) -> dict[str, int]:
        """Over the retained 30 days, read day by day (reason only)."""
        counts: dict[str, int] = {}
        today = utcnow()
        for back in range(RETENTION.days + 1):
            day = (today - timedelta(days=back)).strftime("%Y-%m-%d")
            for item in query_items(self._db, self._page, TableName=self._table,
                                    IndexName=DAY_INDEX, KeyConditionExpression="qday = :day",
                                    ExpressionAttributeValues={":day": {"S": day}},
                                    ProjectionExpression="reason"):
                reason = get_str(item, "reason") or ""
                counts[reason] = counts.get(reason, 0) + 1
        return counts

    def purge_before(self, cutoff: datetime) -> int:
        """Nothing to do: DynamoDB's TTL removes rows after 30 days."""
        return 0


def _to_item(m: QuarantinedMessage, position: str) -> Item:
    at = iso(m.received_at)
    item: Item = {"device_key": {"S": m.device_id or NO_DEVICE},
                  "entry_key": {"S": f"{at}#{position}"},
                  "reason": {"S": m.reason or "unknown"},
                  "qday": {"S": at[:10]},
                  "topic": {"S": m.topic},
                  "expires_at": {"N": str(int((m.received_at + RETENTION).timestamp()))}}
    if m.payload:
        item["payload"] = {"B": m.payload}
    put_str(item, "detail", m.detail)
    put_str(item, "device_id", m.device_id)
    put_time(item, "received_at", m.received_at)
    return item


def _to_domain(item: Item) -> QuarantinedMessage:
    received = get_time(item, "received_at")
    assert received is not None, "quarantine rows are stored with their receive time"
    payload = item.get("payload", {}).get("B", b"")
    return QuarantinedMessage(get_str(item, "topic") or "", get_str(item, "reason") or "",
                              get_str(item, "detail") or "", bytes(payload),
                              get_str(item, "device_id"), received)
