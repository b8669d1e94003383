"""The audit trail on DynamoDB (``iot-audit-{stage}``): append-only and
hash-chained exactly as the SQL trail (core.store.audit's ``entry_hash``), so
the same verification holds and an export from either backend checks out.

One partition (``trail`` = ``audit``) sorted by ``seq``: the chain is a
sequence by nature, each entry hashing the one before. An append reads the
head and Puts ``seq + 1`` on condition that no entry holds that seq yet, so
two writers that read the same head cannot fork the chain: one Put fails and
is retried on the new head. Reading is a Query on that partition, page by
page, in either direction; never a Scan.

What is not here (docs/aws.md, "Gaps"): signed checkpoints of the head. The
chain shows any edited, inserted or re-ordered entry, not entries cut off
the end; on AWS the head would be anchored outside the table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from core.errors import ConcurrentModification, ValidationError
from core.model.timeutil import utcnow
from core.ports.audit import AuditEntry, AuditFilter, AuditReport
from core.store.audit import GENESIS, entry_hash
from plugins.aws.dynamodb.codec import Item, get_int, get_json, get_str, get_time, iso, put_json
from plugins.aws.dynamodb.paging import query_count, query_items
from plugins.aws.settings import AwsSettings

TRAIL_PARTITION = "audit"
_APPEND_RETRIES = 8


class DynamoAuditTrail:
    """core.ports.audit.AuditReader (and so core.ports.hub.AuditTrail)."""

    def __init__(self, client: Any, settings: AwsSettings) -> None:
        self._client = client
        self._table = settings.table("audit")
        self._page = settings.page_size

    def append(self, actor: str, action: str, subject: str,
               details: dict[str, Any] | None = None) -> AuditEntry:
        if not actor or not action:
            raise ValidationError("an audit entry needs an actor and an action")
        details = json.loads(json.dumps(details or {}, allow_nan=False))
        for _ in range(_APPEND_RETRIES):
            head = self._head_item()
            seq = get_int(head, "seq") + 1 if head else 1
            prev = (get_str(head, "hash") or GENESIS) if head else GENESIS
            ts = utcnow()
            digest = entry_hash(prev, ts, actor, action, subject, details)
            entry = AuditEntry(seq, ts, actor, action, subject, details, prev, digest)
            try:
                self._client.put_item(TableName=self._table, Item=_to_item(entry),
                                      ConditionExpression="attribute_not_exists(seq)")
            except self._client.exceptions.ConditionalCheckFailedException:
                continue  # another writer took this seq: chain onto its entry
            return entry
        raise ConcurrentModification("the audit log is too busy to append; try again")

    def search(self, query: AuditFilter | None = None) -> list[AuditEntry]:
        q = query or AuditFilter()
        found: list[AuditEntry] = []
        for e in self._entries(newest_first=q.newest_first):
            if q.actor and e.actor != q.actor:
                continue
            if q.action.endswith("."):
                if not e.action.startswith(q.action):
                    continue
            elif q.action and e.action != q.action:
                continue
            if q.subject and q.subject not in e.subject:
                continue
            if q.since is not None and e.ts < q.since:
                continue
            if q.outcome and e.details.get("outcome", "ok") != q.outcome:
                continue
            found.append(e)
            if q.limit is not None and len(found) >= q.limit:
                break
        return found

    def head(self) -> tuple[int, str, int]:
        head = self._head_item()
        if head is None:
            return 0, GENESIS, 0
        count = query_count(self._client, self._page, **self._partition())
        return get_int(head, "seq"), str(get_str(head, "hash")), count

    def check(self, *, grace: timedelta = timedelta(0), anchor_file: Any = None) -> AuditReport:
        """The chain, entry by entry; no checkpoints are kept on this backend
        (``signatures_checked`` is False, and the report says so)."""
        problems: list[str] = []
        first_bad: int | None = None
        prev, count, last_seq, last_hash = GENESIS, 0, 0, GENESIS
        for e in self._entries(newest_first=False):
            expected = entry_hash(prev, e.ts, e.actor, e.action, e.subject, e.details)
            problem = ""
            if e.seq != last_seq + 1:
                problem = (f"entry #{last_seq + 1} is missing (the next one is #{e.seq}): "
                           "entries were deleted")
            elif e.prev_hash != prev:
                problem = (f"entry #{e.seq} does not link to the entry before it: entries "
                           "before it were deleted or inserted")
            elif e.hash != expected:
                problem = f"entry #{e.seq} does not match its hash: it was edited"
            if problem:
                problems.append(problem)
                first_bad = e.seq if first_bad is None else first_bad
            count += 1
            prev, last_seq, last_hash = e.hash, e.seq, e.hash
        return AuditReport(entries=count, head_seq=last_seq, head_hash=last_hash,
                           checkpoints=0, first_bad_seq=first_bad, problems=tuple(problems),
                           signatures_checked=False)

    def entries(self, *, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Oldest first from ``after_seq`` (the SQL trail's reader, for tests and exports)."""
        out: list[AuditEntry] = []
        for item in query_items(self._client, self._page, TableName=self._table,
                                KeyConditionExpression="trail = :t AND seq > :after",
                                ExpressionAttributeValues={":t": {"S": TRAIL_PARTITION},
                                                           ":after": {"N": str(after_seq)}},
                                ConsistentRead=True):
            out.append(_to_entry(item))
            if len(out) >= limit:
                break
        return out

    def _partition(self) -> dict[str, Any]:
        return {"TableName": self._table, "KeyConditionExpression": "trail = :t",
                "ExpressionAttributeValues": {":t": {"S": TRAIL_PARTITION}},
                "ConsistentRead": True}

    def _entries(self, *, newest_first: bool) -> Iterator[AuditEntry]:
        for item in query_items(self._client, self._page, ScanIndexForward=not newest_first,
                                **self._partition()):
            yield _to_entry(item)

    def _head_item(self) -> Item | None:
        answer = self._client.query(Limit=1, ScanIndexForward=False, **self._partition())
        items: list[Item] = answer.get("Items", [])
        return items[0] if items else None


def _to_item(e: AuditEntry) -> Item:
    item: Item = {"trail": {"S": TRAIL_PARTITION}, "seq": {"N": str(e.seq)},
                  "ts": {"S": iso(e.ts)}, "actor": {"S": e.actor}, "action": {"S": e.action},
                  "subject": {"S": e.subject}, "prev_hash": {"S": e.prev_hash},
                  "hash": {"S": e.hash}}
    put_json(item, "details", e.details)
    return item


def _to_entry(item: Item) -> AuditEntry:
    ts = get_time(item, "ts")
    assert ts is not None, "audit entries are stored with their time"
    return AuditEntry(seq=get_int(item, "seq"), ts=ts, actor=get_str(item, "actor") or "",
                      action=get_str(item, "action") or "",
                      subject=get_str(item, "subject") or "",
                      details=get_json(item, "details", {}),
                      prev_hash=str(get_str(item, "prev_hash")), hash=str(get_str(item, "hash")))
