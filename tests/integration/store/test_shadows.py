from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import ConcurrentModification, NotFound
from core.ports.shadows import ShadowDocument
from core.store import Store

T0 = datetime(2024, 7, 2, 10, 0, 0, 999999, tzinfo=UTC)


def _doc(version: int = 1, **kw: object) -> ShadowDocument:
    base: dict[str, object] = {
        "device_id": "pump-1",
        "desired": {"led": "on", "cfg": {"rate_s": 5, "limits": [1, 2.5]}},
        "reported": {"led": "off", "fw": "1.0.0", "none": None},
        "version": version,
        "updated_at": T0,
    }
    base.update(kw)
    return ShadowDocument(**base)  # type: ignore[arg-type]


def test_create_get_update_delete(store: Store) -> None:
    assert store.shadows.get("pump-1") is None
    first = _doc()
    store.shadows.save(first, expected_version=None)
    assert store.shadows.get("pump-1") == first
    second = _doc(2, reported={"led": "on"}, updated_at=T0 + timedelta(seconds=1))
    store.shadows.save(second, expected_version=1)
    got = store.shadows.get("pump-1")
    assert got == second
    assert got is not None and got.delta == {"cfg": {"rate_s": 5, "limits": [1, 2.5]}}
    bare = ShadowDocument("bare-1")
    store.shadows.save(bare, expected_version=None)
    assert store.shadows.get("bare-1") == bare

    store.shadows.delete("pump-1")
    assert store.shadows.get("pump-1") is None
    with pytest.raises(NotFound):
        store.shadows.delete("pump-1")


def test_version_conflicts(open_store: Callable[[], Store]) -> None:
    a, b = open_store(), open_store()
    a.shadows.save(_doc(), expected_version=None)
    with pytest.raises(ConcurrentModification, match="created"):
        b.shadows.save(_doc(reported={"b": 1}), expected_version=None)

    a.shadows.save(_doc(2, desired={"who": "a"}), expected_version=1)
    with pytest.raises(ConcurrentModification, match="now version 2"):
        b.shadows.save(_doc(2, desired={"who": "b"}), expected_version=1)
    stored = b.shadows.get("pump-1")
    assert stored is not None and stored.desired == {"who": "a"}

    with pytest.raises(ConcurrentModification, match="no longer exists"):
        b.shadows.save(_doc(2, device_id="ghost"), expected_version=1)
    assert b.shadows.get("ghost") is None


@pytest.mark.parametrize("existing", [False, True], ids=["create", "update"])
def test_racing_writers_in_threads_exactly_one_wins(
    open_store: Callable[[], Store], existing: bool
) -> None:
    workers = 6
    stores = [open_store() for _ in range(workers)]
    expected: int | None = None
    if existing:
        stores[0].shadows.save(_doc(), expected_version=None)
        expected = 1
    barrier = threading.Barrier(workers)

    def write(i: int) -> bool:
        doc = _doc((expected or 0) + 1, desired={"writer": i})
        barrier.wait(timeout=10)
        try:
            stores[i].shadows.save(doc, expected_version=expected)
        except ConcurrentModification:
            return False
        return True

    with ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(write, range(workers), timeout=30))
    assert outcomes.count(True) == 1, outcomes
    stored = stores[0].shadows.get("pump-1")
    assert stored is not None
    assert stored.desired == {"writer": outcomes.index(True)}
    assert stored.version == (expected or 0) + 1


def test_documents_are_independent_per_device(store: Store) -> None:
    store.shadows.save(_doc(), expected_version=None)
    other = dataclasses.replace(_doc(), device_id="pump-2", desired={})
    store.shadows.save(other, expected_version=None)
    store.shadows.save(_doc(2, desired={}), expected_version=1)
    assert store.shadows.get("pump-2") == other
