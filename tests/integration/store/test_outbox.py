from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import NotFound, ValidationError
from core.store import Store
from core.store.outbox import MAX_DELAY

T0 = datetime(2024, 8, 1, 9, 0, tzinfo=UTC)


def test_enqueue_is_idempotent_across_consoles(open_store: Callable[[], Store]) -> None:
    a, b = open_store(), open_store()
    payload = {"alert_id": "x1", "user": "alice", "n": [1, 2]}
    first = a.outbox.enqueue("alert.ack", payload, "key-1", now=T0)
    again = b.outbox.enqueue("alert.ack", dict(payload), "key-1", now=T0 + timedelta(seconds=5))
    assert again == first
    assert first.payload == payload
    assert first.attempts == 0
    assert a.outbox.pending_count() == 1
    with pytest.raises(ValidationError, match="different"):
        a.outbox.enqueue("alert.ack", {"alert_id": "x2"}, "key-1")


def test_due_failure_backoff_and_applied(store: Store) -> None:
    m1 = store.outbox.enqueue("k", {"i": 1}, "a", now=T0)
    m2 = store.outbox.enqueue("k", {"i": 2}, "b", now=T0 + timedelta(seconds=1))
    assert [m.id for m in store.outbox.due(T0)] == [m1.id]
    assert [m.id for m in store.outbox.due(T0 + timedelta(seconds=1))] == [m1.id, m2.id]

    retry_at = store.outbox.mark_failed(m1.id, "broker down", now=T0 + timedelta(seconds=2))
    assert retry_at == T0 + timedelta(seconds=3)
    assert [m.id for m in store.outbox.due(T0 + timedelta(seconds=2))] == [m2.id]
    second = store.outbox.mark_failed(m1.id, "still down", now=T0 + timedelta(seconds=3))
    assert second == T0 + timedelta(seconds=5)
    failed = store.outbox.get("a")
    assert (failed.attempts, failed.last_error) == (2, "still down")
    for _ in range(30):
        last = store.outbox.mark_failed(m1.id, "down", now=T0)
    assert last == T0 + MAX_DELAY

    store.outbox.mark_applied(m2.id, at=T0 + timedelta(seconds=4))
    assert store.outbox.get("b").is_applied
    assert store.outbox.due(T0 + timedelta(days=1)) == [store.outbox.get("a")]
    assert store.outbox.pending_count() == 1
    with pytest.raises(NotFound):
        store.outbox.mark_applied(999_999)
