"""Reads of many devices at once that the console makes while a fleet is busy:
``find_many`` (a burst of device statuses) and ``statuses`` with the health it
gives (the status bar's count). Each must say what the one-device reads and the
whole records say, on SQLite and PostgreSQL, in one query a chunk instead of one
a device (or a whole record a device)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event

from core.model import Alert, Device, DeviceStatus, Severity
from core.ports.registry import DeviceRegistry
from core.services.fleet_health import Health, load_fleet_health, load_health_by_device
from core.store import Store

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
STATUSES = [DeviceStatus.ONLINE, DeviceStatus.OFFLINE, DeviceStatus.WARNING,
            DeviceStatus.ERROR, DeviceStatus.DECOMMISSIONED]


def _fleet(store: Store, n: int = 1_200) -> list[str]:
    ids = [f"dev-{i:05d}" for i in range(n)]
    store.registry.upsert_many([
        Device(d, name=f"pump {i}", device_type="pump", organization=f"org-{i % 3}",
               status=STATUSES[i % len(STATUSES)], tags=frozenset({f"t{i % 4}"} if i % 2 else ()))
        for i, d in enumerate(ids)])
    return ids


def _statements(store: Store) -> list[str]:
    seen: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_find_many_gives_what_find_gives_for_each_known_device(store: Store) -> None:
    ids = _fleet(store)
    wanted = [*ids[::7], "nobody-1", ids[0]]  # an unknown one and a repeat
    statements = _statements(store)
    found = store.registry.find_many(wanted)
    assert len(statements) <= 4  # 1,200 ids: a chunk or two of each query
    assert set(found) == set(ids[::7])
    for device_id, device in found.items():
        assert device == store.registry.find(device_id)
        assert device.tags == store.registry.find(device_id).tags
    assert store.registry.find_many([]) == {}
    # the port's own version (any registry without a query of its own) agrees
    assert DeviceRegistry.find_many(store.registry, wanted) == found


def test_the_health_count_from_statuses_is_the_count_from_whole_records(store: Store) -> None:
    ids = _fleet(store)
    for i, severity in ((0, Severity.CRITICAL), (5, Severity.WARNING), (1, Severity.CRITICAL),
                        (10, Severity.INFO), (4, Severity.CRITICAL)):
        store.alerts.add(Alert(device_id=ids[i], rule_id=f"r-{i}", severity=severity,
                               message="m", value=1.0, created_at=T0, updated_at=T0))
    assert store.registry.statuses() == {d.device_id: d.status for d in store.registry.list()}
    statements = _statements(store)
    by_device = load_health_by_device(store.registry, store.alerts)
    assert len(statements) == 2  # the statuses, the open alerts
    assert by_device == load_fleet_health(store.registry, store.alerts).health
    # online with a critical alert, online with a warning one, offline with a
    # critical one (offline says more), decommissioned with one (still retired)
    assert (by_device[ids[0]], by_device[ids[5]], by_device[ids[1]], by_device[ids[4]]) == (
        Health.CRITICAL, Health.WARNING, Health.OFFLINE, Health.DECOMMISSIONED)
    assert DeviceRegistry.statuses(store.registry) == store.registry.statuses()
