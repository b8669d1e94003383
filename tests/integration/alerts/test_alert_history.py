"""A resolved alert that recurs is reopened under the same id, and its history
keeps every earlier step: who acknowledged it, who resolved it and why."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.model import AlertEventKind, AlertRule, AlertState, Device, DeviceStatus, Severity
from core.model.roles import Actor, Role
from core.services.alerting import AlertEngine, AlertService, ChangeKind
from tests.integration.alerts.test_engine_sqlite import Clock, rule_types, store, temps

__all__ = ["rule_types", "store"]  # fixtures shared with the engine tests


def test_reopened_alert_keeps_its_resolution_in_the_history(store, rule_types):
    store.rules.add(AlertRule("Hot pump", "threshold",
                              {"metric": "temp", "limit": 80, "hysteresis": 5},
                              Severity.CRITICAL, rule_id="hot-pump"))
    pump = Device("pump-1", device_type="pump", status=DeviceStatus.ONLINE)
    store.registry.upsert(pump)
    clock = Clock()
    engine = AlertEngine(store.rules.list(), rule_types, store.alerts,
                         store.registry.list, clock)
    service = AlertService(store.alerts, store.audit, clock)
    maria = Actor("maria", Role.SUPPORT)

    [raised] = engine.process(pump, temps(clock, "pump-1", 86))
    alert_id = raised.alert.alert_id
    service.acknowledge(alert_id, maria, "on my way")
    clock.now += timedelta(minutes=5)
    service.resolve(alert_id, maria, "replaced the bearing")
    assert store.alerts.get(alert_id).resolve_comment == "replaced the bearing"

    engine.process(pump, temps(clock, "pump-1", 70))
    clock.now += timedelta(minutes=10)
    [again] = engine.process(pump, temps(clock, "pump-1", 91))
    assert (again.kind, again.alert.alert_id) == (ChangeKind.REOPENED, alert_id)
    current = store.alerts.get(alert_id)
    assert current.state is AlertState.ACTIVE and current.resolved_by is None

    history = store.alerts.history(alert_id)
    assert [(e.kind, e.actor, e.comment) for e in history] == [
        (AlertEventKind.RAISED, "system", ""),
        (AlertEventKind.ACKNOWLEDGED, "maria", "on my way"),
        (AlertEventKind.RESOLVED, "maria", "replaced the bearing"),
        (AlertEventKind.REOPENED, "", ""),
    ]
    reopened = history[-1]
    assert reopened.details["previous_resolved_by"] == "maria"
    assert reopened.details["previous_comment"] == "replaced the bearing"
    assert reopened.details["value"] == 91.0
    assert reopened.at == current.updated_at > history[2].at
    assert "resolved by maria: “replaced the bearing”" in reopened.describe()

    # the second occurrence runs its own course; the first stays in the history
    service.acknowledge(alert_id, Actor("tom", Role.SUPPORT))
    engine.process(pump, temps(clock, "pump-1", 60))
    kinds = [(e.kind, e.actor) for e in store.alerts.history(alert_id)]
    assert kinds[-2:] == [(AlertEventKind.ACKNOWLEDGED, "tom"),
                          (AlertEventKind.RESOLVED, "system")]
    assert (AlertEventKind.RESOLVED, "maria") in kinds


def test_snooze_and_a_lost_race_leave_a_true_history(store):
    from core.errors import ConcurrentModification
    from core.model import Alert

    alert = Alert("pump-2", "r", Severity.WARNING, "vibration")
    store.alerts.add(alert)
    snoozed = alert.snooze(alert.created_at + timedelta(hours=1),
                           at=alert.created_at + timedelta(seconds=1))
    store.alerts.save(snoozed)
    with pytest.raises(ConcurrentModification):  # a stale copy loses and leaves no event
        store.alerts.save(alert.acknowledge("late", at=alert.created_at))
    assert [e.kind for e in store.alerts.history(alert.alert_id)] == [
        AlertEventKind.RAISED, AlertEventKind.SNOOZED]
