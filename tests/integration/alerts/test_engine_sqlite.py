"""The alert engine end to end against a real SQLite store, with the rule types
the real plugins register and the rules the store keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.errors import ConcurrentModification
from core.model import AlertRule, AlertState, Device, DeviceStatus, Reading, RuleScope, Severity
from core.model.roles import Actor, Role
from core.plugins import PluginManager
from core.services.alerting import AlertEngine, AlertService, ChangeKind

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path):
    from core.store import Store

    with Store.open(f"sqlite:///{tmp_path / 'smartiot.db'}") as store:
        yield store


@pytest.fixture(scope="module")
def rule_types():
    types = PluginManager(entry_points=False, blocked=()).alert_rule_types()
    assert {"threshold", "rate_of_change", "no_data", "composite"} <= set(types)
    return types


def temps(clock, device_id, *values):
    out = []
    for v in values:
        clock.now += timedelta(seconds=10)
        out.append(Reading(device_id, "temp", clock.now, v))
    return out


def test_lifecycle_raise_ack_autoresolve_reopen(store, rule_types):
    store.rules.add(AlertRule("Hot pump", "threshold",
                              {"metric": "temp", "limit": 80, "hysteresis": 5,
                               "min_duration_s": 10},
                              Severity.CRITICAL, RuleScope(device_types=frozenset({"pump"})),
                              rule_id="hot-pump"))
    store.rules.add(AlertRule("Off", "threshold", {"metric": "temp", "limit": 0},
                              enabled=False, rule_id="off"))
    pump = Device("pump-1", device_type="pump", status=DeviceStatus.ONLINE)
    valve = Device("valve-1", device_type="valve", status=DeviceStatus.ONLINE)
    store.registry.upsert_many([pump, valve])
    clock = Clock()
    engine = AlertEngine(store.rules.list(), rule_types, store.alerts,
                         store.registry.list, clock)
    service = AlertService(store.alerts, store.audit, clock)

    assert engine.process(valve, temps(clock, "valve-1", 99, 99)) == []
    assert engine.process(pump, temps(clock, "pump-1", 85)) == []  # not 10 s yet
    [raised] = engine.process(pump, temps(clock, "pump-1", 86))
    assert raised.kind is ChangeKind.RAISED
    stored = store.alerts.get(raised.alert.alert_id)
    assert (stored.state, stored.value, stored.severity) == (AlertState.ACTIVE, 86.0,
                                                             Severity.CRITICAL)

    service.acknowledge(stored.alert_id, Actor("maria", Role.SUPPORT), "on my way")
    with pytest.raises(ConcurrentModification) as info:  # a second console, stale copy
        store.alerts.save(stored.acknowledge("tom", at=clock.now))
    assert info.value.changed_by == "maria"

    [resolved] = engine.process(pump, temps(clock, "pump-1", 74))
    assert resolved.kind is ChangeKind.RESOLVED
    assert store.alerts.get(stored.alert_id).resolved_by == "system"

    clock.now += timedelta(minutes=20)
    engine.process(pump, temps(clock, "pump-1", 90))
    [reopened] = engine.process(pump, temps(clock, "pump-1", 90))
    assert (reopened.kind, reopened.alert.alert_id) == (ChangeKind.REOPENED, stored.alert_id)
    current = store.alerts.get(stored.alert_id)
    assert current.state is AlertState.ACTIVE and current.acknowledged_by is None
    assert len(store.alerts.list()) == 1
    assert [(e.actor, e.action) for e in store.audit.entries()] == [
        ("maria", "alert.acknowledge")]


def test_no_data_and_escalation_on_tick(store, rule_types):
    store.rules.add(AlertRule("Silent", "no_data", {"minutes": 5}, Severity.CRITICAL,
                              escalate_after_s=300, rule_id="silent"))
    clock = Clock()
    store.registry.upsert(Device("pump-1", status=DeviceStatus.ONLINE, last_seen=T0))
    engine = AlertEngine(store.rules.list(), rule_types, store.alerts,
                         store.registry.list, clock)
    assert engine.tick(T0 + timedelta(minutes=4)).changes == []
    fired = engine.tick(T0 + timedelta(minutes=5))
    assert [c.kind for c in fired.changes] == [ChangeKind.RAISED]
    assert engine.tick(T0 + timedelta(minutes=9)).reminders == []
    assert [r.count for r in engine.tick(T0 + timedelta(minutes=10)).reminders] == [1]
    assert [r.count for r in engine.tick(T0 + timedelta(minutes=15)).reminders] == [2]

    # the hub restarts: the new engine resumes the open alert and resolves it on data
    restarted = AlertEngine(store.rules.list(), rule_types, store.alerts,
                            store.registry.list, clock)
    clock.now = T0 + timedelta(minutes=16)
    back = restarted.process(store.registry.get("pump-1"), temps(clock, "pump-1", 20))
    assert [c.kind for c in back] == [ChangeKind.RESOLVED]
    assert store.alerts.list()[0].state is AlertState.RESOLVED
