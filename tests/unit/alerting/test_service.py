from datetime import timedelta

import pytest

from core.errors import ConcurrentModification, IllegalTransition
from core.model import Alert, AlertState
from core.model.roles import Actor, Role
from core.services.alerting import AlertService
from tests.unit.alerting.fakes import T0, Clock, MemoryAlertStore, MemoryAudit

MARIA = Actor("maria", Role.SUPPORT)
TOM = Actor("tom", Role.SUPPORT)


@pytest.fixture
def setup():
    store, audit, clock = MemoryAlertStore(), MemoryAudit(), Clock()
    for i in range(3):
        store.add(Alert(f"pump-{i}", "hot", "critical", "hot", alert_id=f"a{i}",
                        created_at=T0, updated_at=T0))
    return store, audit, clock, AlertService(store, audit, clock)


def test_acknowledge_saves_then_audits(setup):
    store, audit, _, service = setup
    alert = service.acknowledge("a0", MARIA, "on my way")
    assert store.get("a0") == alert and alert.state is AlertState.ACKNOWLEDGED
    actor, action, subject, details = audit.entries[0]
    assert (actor, action, subject) == ("maria", "alert.acknowledge", "a0")
    assert details["comment"] == "on my way" and details["version"] == 2


def test_failed_save_writes_no_audit_entry_and_names_the_winner(setup):
    store, audit, clock, service = setup
    stale = store.get("a0")
    service.acknowledge("a0", MARIA)
    with pytest.raises(ConcurrentModification) as info:
        store.save(stale.acknowledge("tom", at=clock.now))
    assert info.value.changed_by == "maria"
    with pytest.raises(IllegalTransition, match="already acknowledged by maria"):
        service.acknowledge("a0", TOM)
    assert [e[0] for e in audit.entries] == ["maria"]


def test_audit_failure_after_save_propagates(setup):
    store, _, clock, _ = setup

    class Broken:
        def append(self, *a, **k):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        AlertService(store, Broken(), clock).resolve("a1", TOM)
    assert store.get("a1").state is AlertState.RESOLVED


def test_bulk_reports_each_alert(setup):
    _, audit, _, service = setup
    service.acknowledge("a1", MARIA)
    results = service.acknowledge_many(["a0", "a1", "nope"], TOM, "checking")
    assert [r.ok for r in results] == [True, False, False]
    assert results[1].error == "already acknowledged by maria at " + \
        T0.astimezone().strftime("%H:%M") and results[1].changed_by == "maria"
    assert "does not exist" in results[2].error
    resolved = service.resolve_many(["a0", "a1"], TOM, "fixed")
    assert all(r.ok for r in resolved)
    assert [e[1] for e in audit.entries][-2:] == ["alert.resolve", "alert.resolve"]
    assert audit.entries[-1][3]["comment"] == "fixed"


def test_bulk_race_reports_who_won(setup, monkeypatch):
    store, _, clock, service = setup
    real_get = store.get

    def stale_get(alert_id):  # someone acknowledges between our read and our save
        alert = real_get(alert_id)
        if alert.state is AlertState.ACTIVE:
            store.rows[alert_id] = alert.acknowledge("maria", at=clock.now)
        return alert

    monkeypatch.setattr(store, "get", stale_get)
    [result] = service.acknowledge_many(["a2"], TOM)
    assert not result.ok and result.changed_by == "maria"
    assert result.error.startswith("already acknowledged by maria")


def test_snooze_and_validation(setup):
    _, audit, clock, service = setup
    until = clock.now + timedelta(hours=2)
    assert service.snooze("a0", TOM, until).snoozed_until == until
    assert audit.entries[-1][1] == "alert.snooze"
    [bad] = service.snooze_many(["a1"], TOM, clock.now - timedelta(minutes=1))
    assert bad.error == "snooze must end in the future"


def test_without_audit_trail_actions_still_work(setup):
    store, _, clock, _ = setup
    service = AlertService(store, None, clock)
    assert not service.audited
    assert service.resolve("a0", TOM).state is AlertState.RESOLVED
