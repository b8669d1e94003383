from datetime import timedelta

import pytest

from core.model import AlertRule, AlertState, DeviceStatus, RuleScope, Severity
from core.services.alerting import (
    BUILTIN_RULE_TYPES,
    AlertEngine,
    ChangeKind,
)
from tests.unit.alerting.fakes import Clock, MemoryAlertStore, device, readings


def hot_rule(**kwargs):
    kwargs.setdefault("rule_id", "hot")
    return AlertRule("Hot pump", "threshold",
                     {"metric": "temp", "limit": 80, "hysteresis": 5}, **kwargs)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store():
    return MemoryAlertStore()


def engine(store, clock, *rules, devices=(), **kwargs):
    return AlertEngine(rules, BUILTIN_RULE_TYPES, store, lambda: list(devices), clock, **kwargs)


def temp(clock, *values, device_id="pump-1"):
    start = clock.now
    clock.advance(seconds=10 * len(values))
    return readings("temp", list(values), start=start, device_id=device_id)


def test_raises_one_alert_per_rule_and_device(store, clock):
    eng = engine(store, clock, hot_rule(severity=Severity.CRITICAL))
    changes = eng.process(device(), temp(clock, 85))
    assert [(c.kind, c.notify) for c in changes] == [(ChangeKind.RAISED, True)]
    alert = changes[0].alert
    assert (alert.severity, alert.value, alert.rule_id) == (Severity.CRITICAL, 85.0, "hot")
    assert alert.message == "Hot pump: temp 85 above limit 80"
    eng2 = engine(store, clock, hot_rule())  # a restarted hub sees the open alert
    assert eng2.process(device(), temp(clock, 78, 90)) == []
    assert len(store.rows) == 1
    assert len(eng.process(device("pump-2"), temp(clock, 90, device_id="pump-2"))) == 1


def test_auto_resolve_by_system_and_not_without_it(store, clock):
    eng = engine(store, clock, hot_rule(), hot_rule(rule_id="manual", auto_resolve=False))
    eng.process(device(), temp(clock, 85))
    changes = eng.process(device(), temp(clock, 70))
    assert [(c.kind, c.alert.rule_id) for c in changes] == [(ChangeKind.RESOLVED, "hot")]
    assert changes[0].alert.resolved_by == "system"
    assert store.open_alert_for("pump-1", "manual") is not None


def test_recurrence_reopens_within_the_window_else_new_alert(store, clock):
    eng = engine(store, clock, hot_rule(), reopen_window=timedelta(hours=1))
    first = eng.process(device(), temp(clock, 85))[0].alert
    eng.process(device(), temp(clock, 70))
    clock.advance(minutes=30)
    again = eng.process(device(), temp(clock, 86))
    assert [(c.kind, c.alert.alert_id) for c in again] == [(ChangeKind.REOPENED,
                                                            first.alert_id)]
    assert again[0].alert.state is AlertState.ACTIVE and again[0].alert.value == 86.0
    eng.process(device(), temp(clock, 70))
    clock.advance(hours=2)
    later = eng.process(device(), temp(clock, 87))
    assert later[0].kind is ChangeKind.RAISED and later[0].alert.alert_id != first.alert_id


def test_snoozed_alert_resolution_does_not_notify(store, clock):
    eng = engine(store, clock, hot_rule())
    alert = eng.process(device(), temp(clock, 85))[0].alert
    store.save(alert.snooze(clock.now + timedelta(hours=1), at=clock.now))
    changes = eng.process(device(), temp(clock, 60))
    assert [(c.kind, c.notify) for c in changes] == [(ChangeKind.RESOLVED, False)]


def test_auto_resolve_retries_when_a_person_acted_meanwhile(store, clock):
    eng = engine(store, clock, hot_rule())
    alert = eng.process(device(), temp(clock, 85))[0].alert
    store.save(alert.acknowledge("maria", at=clock.now))
    changes = eng.process(device(), temp(clock, 60))
    assert changes[0].alert.state is AlertState.RESOLVED
    assert changes[0].alert.acknowledged_by == "maria"


def test_scope_disabled_and_decommissioned(store, clock):
    scoped = hot_rule(scope=RuleScope(device_types=frozenset({"pump"})))
    off = hot_rule(rule_id="off", enabled=False)
    eng = engine(store, clock, scoped, off)
    assert eng.process(device(device_type="valve"), temp(clock, 99)) == []
    assert eng.process(device(device_type="pump", status=DeviceStatus.DECOMMISSIONED),
                       temp(clock, 99)) == []
    assert [c.alert.rule_id for c in eng.process(device(device_type="pump"),
                                                 temp(clock, 99))] == ["hot"]
    assert "off" not in eng.rules


def test_invalid_rule_is_skipped_and_reported(store, clock):
    bad = AlertRule("Broken", "threshold", {"metric": "temp"}, rule_id="bad")
    eng = engine(store, clock, bad, hot_rule())
    assert eng.rule_errors == {"bad": "rule 'Broken' (bad): parameter 'limit' is required"}
    assert len(eng.process(device(), temp(clock, 90))) == 1


def test_no_data_through_tick(store, clock):
    quiet = AlertRule("Quiet", "no_data", {"minutes": 5}, rule_id="quiet")
    dev = device(last_seen=clock.now)
    eng = engine(store, clock, quiet, devices=[dev])
    assert eng.tick(clock.advance(minutes=4)).changes == []
    result = eng.tick(clock.advance(minutes=1))
    assert [c.kind for c in result.changes] == [ChangeKind.RAISED]
    back = eng.process(dev, temp(clock, 20))
    assert [c.kind for c in back] == [ChangeKind.RESOLVED]


def test_escalation_reminders_repeat_until_acknowledged(store, clock):
    rule = hot_rule(severity=Severity.CRITICAL, escalate_after_s=600)
    eng = engine(store, clock, rule, hot_rule(rule_id="warn", escalate_after_s=60))
    alert = eng.process(device(), temp(clock, 90))[0].alert
    raised_at = alert.created_at
    assert eng.tick(raised_at + timedelta(minutes=9)).reminders == []
    first = eng.tick(raised_at + timedelta(minutes=10)).reminders
    assert [(r.alert.alert_id, r.count) for r in first] == [(alert.alert_id, 1)]
    assert eng.tick(raised_at + timedelta(minutes=15)).reminders == []
    assert [r.count for r in eng.tick(raised_at + timedelta(minutes=20)).reminders] == [2]
    store.save(store.get(alert.alert_id).acknowledge("maria", at=clock.now))
    assert eng.tick(raised_at + timedelta(minutes=40)).reminders == []


def test_snoozed_critical_alert_gets_no_reminder_until_the_snooze_ends(store, clock):
    eng = engine(store, clock, hot_rule(severity=Severity.CRITICAL, escalate_after_s=600))
    alert = eng.process(device(), temp(clock, 90))[0].alert
    until = alert.created_at + timedelta(hours=1)
    store.save(alert.snooze(until, at=alert.created_at))
    assert eng.tick(alert.created_at + timedelta(minutes=30)).reminders == []
    assert eng.tick(until + timedelta(minutes=9)).reminders == []
    assert len(eng.tick(until + timedelta(minutes=10)).reminders) == 1


def test_restart_resumes_open_alerts_so_they_auto_resolve(store, clock):
    engine(store, clock, hot_rule()).process(device(), temp(clock, 90))
    fresh = engine(store, clock, hot_rule())
    assert fresh.process(device(), temp(clock, 78)) == []  # inside the band: still hot
    assert [c.kind for c in fresh.process(device(), temp(clock, 70))] == [ChangeKind.RESOLVED]


def test_set_rules_keeps_state_of_unchanged_rules(store, clock):
    rule = AlertRule("Slow", "threshold", {"metric": "temp", "limit": 80,
                                           "min_duration_s": 20}, rule_id="slow")
    eng = engine(store, clock, rule)
    eng.process(device(), temp(clock, 90, 90))  # 10 s held so far
    eng.set_rules([rule, hot_rule(rule_id="other", enabled=False)])
    assert [c.alert.rule_id for c in eng.process(device(), temp(clock, 90))] == ["slow"]
