from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import ConcurrentModification, NotFound, ValidationError
from core.model import Alert, AlertState, Severity
from core.ports.alerts import AlertQuery
from core.store import Store

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def _alert(device: str = "dev-1", rule: str = "temp-high", **kw: object) -> Alert:
    base: dict[str, object] = {
        "device_id": device,
        "rule_id": rule,
        "severity": Severity.WARNING,
        "message": "temperature above 80 °C",
        "value": 81.5,
        "created_at": T0,
        "updated_at": T0,
    }
    base.update(kw)
    return Alert(**base)  # type: ignore[arg-type]


def test_alert_round_trip_and_lifecycle(store: Store) -> None:
    alert = _alert()
    store.alerts.add(alert)
    assert store.alerts.get(alert.alert_id) == alert
    with pytest.raises(ValidationError):
        store.alerts.add(alert)

    acked = alert.acknowledge("alice", "on it", at=T0 + timedelta(minutes=1))
    store.alerts.save(acked)
    snoozed = acked.snooze(T0 + timedelta(hours=2), at=T0 + timedelta(minutes=2))
    store.alerts.save(snoozed)
    assert store.alerts.get(alert.alert_id) == snoozed
    resolved = snoozed.resolve("bob", at=T0 + timedelta(minutes=3))
    store.alerts.save(resolved)
    stored = store.alerts.get(alert.alert_id)
    assert stored == resolved
    assert stored.version == 4
    assert stored.acknowledged_by == "alice"
    assert stored.resolved_by == "bob"
    with pytest.raises(NotFound):
        store.alerts.get("nope")


def test_stale_save_names_the_winner(open_store: Callable[[], Store]) -> None:
    console_a, console_b = open_store(), open_store()
    alert = _alert()
    console_a.alerts.add(alert)
    seen_by_a = console_a.alerts.get(alert.alert_id)
    seen_by_b = console_b.alerts.get(alert.alert_id)

    console_a.alerts.save(seen_by_a.acknowledge("alice"))
    with pytest.raises(ConcurrentModification) as info:
        console_b.alerts.save(seen_by_b.acknowledge("bob"))
    assert info.value.changed_by == "alice"
    assert "alice" in str(info.value)
    stored = console_b.alerts.get(alert.alert_id)
    assert (stored.acknowledged_by, stored.version) == ("alice", 2)

    # A resolve racing an acknowledgement names the resolver.
    fresh = console_a.alerts.get(alert.alert_id)
    console_a.alerts.save(fresh.resolve("carol"))
    with pytest.raises(ConcurrentModification) as info:
        console_b.alerts.save(fresh.snooze(datetime.now(UTC) + timedelta(hours=1)))
    assert info.value.changed_by == "carol"


def test_save_of_unknown_alert_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.alerts.save(_alert().acknowledge("alice"))


def test_concurrent_acknowledgements_in_threads_exactly_one_wins(
    open_store: Callable[[], Store],
) -> None:
    workers = 6
    stores = [open_store() for _ in range(workers)]
    alert = _alert()
    stores[0].alerts.add(alert)
    barrier = threading.Barrier(workers)

    def ack(i: int) -> tuple[bool, str | None]:
        loaded = stores[i].alerts.get(alert.alert_id)
        barrier.wait(timeout=10)  # everyone holds version 1 before anyone saves
        try:
            stores[i].alerts.save(loaded.acknowledge(f"user{i}"))
        except ConcurrentModification as exc:
            return False, exc.changed_by
        return True, f"user{i}"

    # Futures re-raise anything unexpected from the worker threads here.
    with ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(ack, range(workers), timeout=30))
    won = [who for ok, who in outcomes if ok]
    lost = [who for ok, who in outcomes if not ok]
    assert len(won) == 1, won
    assert lost == [won[0]] * (workers - 1)
    stored = stores[0].alerts.get(alert.alert_id)
    assert stored.acknowledged_by == won[0]
    assert stored.version == 2


def test_alert_queries(store: Store) -> None:
    a1 = _alert("dev-1", "r1", severity=Severity.CRITICAL, created_at=T0)
    a2 = _alert("dev-1", "r2", severity=Severity.INFO, created_at=T0 + timedelta(minutes=1))
    a3 = _alert("dev-2", "r1", severity=Severity.CRITICAL, created_at=T0 + timedelta(minutes=2))
    for a in (a1, a2, a3):
        store.alerts.add(a)
    store.alerts.save(a3.resolve("system"))

    assert [a.alert_id for a in store.alerts.list()] == [a3.alert_id, a2.alert_id, a1.alert_id]
    assert {a.alert_id for a in store.alerts.list(AlertQuery(device_id="dev-1"))} == {
        a1.alert_id,
        a2.alert_id,
    }
    open_states = frozenset({AlertState.ACTIVE, AlertState.ACKNOWLEDGED})
    assert [a.alert_id for a in store.alerts.list(AlertQuery(states=open_states))] == [
        a2.alert_id,
        a1.alert_id,
    ]
    crit = store.alerts.list(AlertQuery(severities=frozenset({Severity.CRITICAL})))
    assert [a.alert_id for a in crit] == [a3.alert_id, a1.alert_id]
    since = store.alerts.list(AlertQuery(since=T0 + timedelta(seconds=30)))
    assert [a.alert_id for a in since] == [a3.alert_id, a2.alert_id]
    assert len(store.alerts.list(AlertQuery(limit=2))) == 2

    assert store.alerts.open_alert_for("dev-1", "r1") == a1
    assert store.alerts.open_alert_for("dev-2", "r1") is None
    assert store.alerts.counts_by_severity() == {
        Severity.INFO: 1,
        Severity.WARNING: 0,
        Severity.CRITICAL: 1,
    }
    assert store.alerts.counts_by_severity(open_only=False)[Severity.CRITICAL] == 2
