from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from core.store import Store
from core.store.audit import GENESIS


def test_chain_links_and_verifies(store: Store) -> None:
    assert store.audit.verify() is None
    e1 = store.audit.append("alice", "alert.ack", "alert:1", {"comment": "on it", "n": 1.5})
    e2 = store.audit.append("bob", "firmware.add", "pump@1.0.0")
    assert e1.prev_hash == GENESIS
    assert e2.prev_hash == e1.hash
    assert store.audit.entries() == [e1, e2]
    assert store.audit.verify() is None


def test_verify_finds_first_tampered_row(store: Store) -> None:
    entries = [store.audit.append("alice", "act", f"s{i}", {"i": i}) for i in range(5)]
    assert store.audit.verify() is None
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit SET actor = 'mallory' WHERE seq = :seq"), {"seq": entries[2].seq}
        )
    assert store.audit.verify() == entries[2].seq


def test_verify_detects_deleted_row(store: Store) -> None:
    entries = [store.audit.append("alice", "act", f"s{i}") for i in range(4)]
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit WHERE seq = :seq"), {"seq": entries[1].seq})
    assert store.audit.verify() == entries[2].seq


def test_concurrent_appends_keep_one_linear_chain(open_store: Callable[[], Store]) -> None:
    stores = [open_store() for _ in range(4)]

    def work(i: int) -> None:
        for j in range(8):
            stores[i].audit.append(f"user{i}", "act", f"{i}-{j}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4), timeout=60))  # re-raises worker errors
    entries = stores[0].audit.entries()
    assert len(entries) == 32
    assert stores[0].audit.verify() is None
