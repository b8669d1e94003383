"""Alert rules and the audit trail on DynamoDB, through moto's server: both
are read with paged Queries on one partition, never a Scan; a rule edited
from an older version is refused; the audit trail is hash-chained exactly as
the SQL trail (same hashes for the same entries), an append that loses the
race for its place cannot fork it, and an edited or deleted entry is found
by the verification."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from core.errors import ConcurrentModification, NotFound, ValidationError
from core.model.rule import AlertRule
from core.ports.audit import AuditFilter
from core.store.audit import GENESIS, entry_hash
from tests.integration.aws.conftest import PAGE, DynamoFleet

HOT = {"metric": "temperature", "op": "above", "limit": 70}


def test_rules_are_listed_by_a_paged_query_and_a_stale_edit_is_refused(
        dynamo: DynamoFleet) -> None:
    rules = dynamo.backend.rules
    for i, name in enumerate(["Hot", "Cold", "Wet", "Dry", "Loud"]):
        rules.add(AlertRule(name, "threshold", HOT, rule_id=f"r{i}", enabled=i != 3,
                            escalate_after_s=90.5 if i == 0 else None))
    dynamo.calls.clear()
    assert [r.name for r in rules.list()] == ["Cold", "Dry", "Hot", "Loud", "Wet"]
    queries = dynamo.calls.named("Query")
    assert len(queries) >= 3 and all(q["Limit"] == PAGE for q in queries)
    assert all("ExclusiveStartKey" in q for q in queries[1:])
    assert "Scan" not in dynamo.calls.operations
    assert "Dry" not in [r.name for r in rules.list(enabled_only=True)]
    assert rules.get("r0").escalate_after_s == 90.5 and rules.get("r0").params == HOT

    first = rules.get("r1")
    rules.save(replace(first, name="Frost", version=2))
    with pytest.raises(ConcurrentModification, match="now version 2, the edit was based on "
                                                     "version 1"):
        dynamo.second_backend().rules.save(replace(first, name="Chill", version=2))
    assert rules.get("r1").name == "Frost"
    with pytest.raises(ValidationError, match="r1 already exists"):
        rules.add(AlertRule("Again", "threshold", HOT, rule_id="r1"))
    rules.delete("r1")
    with pytest.raises(NotFound):
        rules.delete("r1")
    with pytest.raises(NotFound):
        rules.save(replace(first, version=2))


def test_the_audit_trail_chains_as_the_sql_trail_and_reads_page_by_page(
        dynamo: DynamoFleet) -> None:
    trail = dynamo.backend.audit
    for i in range(5):
        trail.append(f"user-{i % 2}", "device.update" if i % 2 else "alert.acknowledge",
                     f"pump-{i}", {"outcome": "denied"} if i == 4 else {"n": i})
    entries = trail.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    prev = GENESIS
    for e in entries:  # the SQL trail's hash function, entry by entry
        assert e.prev_hash == prev
        assert e.hash == entry_hash(prev, e.ts, e.actor, e.action, e.subject, e.details)
        prev = e.hash
    assert trail.head() == (5, entries[-1].hash, 5)

    dynamo.calls.clear()
    assert [e.seq for e in trail.search(AuditFilter(action="alert.", newest_first=True))] == [
        5, 3, 1]
    assert [e.seq for e in trail.search(AuditFilter(outcome="denied"))] == [5]
    assert [e.seq for e in trail.search(AuditFilter(actor="user-1", limit=1))] == [2]
    queries = dynamo.calls.named("Query")
    assert any("ExclusiveStartKey" in q for q in queries)
    assert "Scan" not in dynamo.calls.operations
    report = trail.check()
    assert report.ok and (report.entries, report.head_seq) == (5, 5)
    assert not report.signatures_checked  # no checkpoints on this backend (docs/aws.md)


def test_an_append_that_lost_the_race_for_its_seq_chains_onto_the_winner(
        dynamo: DynamoFleet) -> None:
    """Another writer appends between this one's read of the head and its Put
    (injected just before the Put is sent): the conditional Put is refused and
    retried on the new head, so both entries are kept and the chain is whole."""
    trail, other = dynamo.backend.audit, dynamo.second_backend().audit
    trail.append("ada", "device.update", "pump-0")
    raced: list[int] = []

    def bob_first(**_: Any) -> None:
        if not raced:
            raced.append(other.append("bob", "alert.acknowledge", "a-1").seq)

    events = dynamo.backend.clients.dynamodb.meta.events
    events.register("before-parameter-build.dynamodb.PutItem", bob_first)
    try:
        mine = trail.append("ada", "device.update", "pump-1")
    finally:
        events.unregister("before-parameter-build.dynamodb.PutItem", bob_first)
    assert raced == [2] and mine.seq == 3
    assert [(e.seq, e.actor) for e in trail.entries()] == [(1, "ada"), (2, "bob"), (3, "ada")]
    report = trail.check()
    assert report.ok and report.entries == 3
    refused = [p for p in dynamo.calls.named("PutItem") if p["Item"]["seq"]["N"] == "2"]
    assert [p["Item"]["actor"]["S"] for p in refused] == ["ada"]  # the try that lost seq 2


def test_an_edited_or_deleted_entry_is_found_by_the_verification(
        dynamo: DynamoFleet) -> None:
    trail = dynamo.backend.audit
    for i in range(4):
        trail.append("ada", "device.update", f"pump-{i}")
    client, table = dynamo.backend.clients.dynamodb, dynamo.settings.table("audit")
    key = {"trail": {"S": "audit"}, "seq": {"N": "2"}}
    client.update_item(TableName=table, Key=key, UpdateExpression="SET subject = :s",
                       ExpressionAttributeValues={":s": {"S": "valve-9"}})
    report = trail.check()
    assert not report.ok and report.first_bad_seq == 2
    assert "entry #2 does not match its hash: it was edited" in report.problems
    client.delete_item(TableName=table, Key=key)
    assert "entry #2 is missing (the next one is #3): entries were deleted" in \
        trail.check().problems
