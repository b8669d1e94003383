"""The alerts use cases over a real store (SQLite, and PostgreSQL when
SMARTIOT_TEST_PG_URL is set), through the session every front end uses:
each change is refused to the roles core.model.roles.GRANTS leaves out and
audited whether it went through or was refused; a person of another
organization gets NotFound for another organization's alert and rule, and
sees neither in listings, counts or the rejected messages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest

from core.errors import NotFound, PermissionDenied
from core.model import Alert, AlertState, Device, Severity
from core.model.link import QuarantinedMessage
from core.model.roles import GRANTS, Permission, Role
from core.model.rule import AlertRule, RuleScope
from core.model.timeutil import utcnow
from core.ports.backend import Backend
from core.ports.fleet_api import AlertsApi
from core.store import Store
from tests.integration.services.area_fleet import AreaFleet, UseCase, run_as
from tests.integration.store.conftest import (  # noqa: F401  (fixtures)
    open_store,
    store,
    store_url,
)

HOT = {"metric": "temperature", "op": "above", "limit": 70}


@dataclass
class Fleet(AreaFleet):
    def session(self, role: Role, organization: str = "acme", user: str = "") -> AlertsApi:
        return self.api(role, organization, user).alerts


@pytest.fixture
def fleet(store: Store) -> Fleet:  # noqa: F811
    backend = Backend("local", registry=store.registry, alerts=store.alerts,
                      telemetry=store.telemetry, rules=store.rules, audit=store.audit,
                      quarantine=store.quarantine)
    store.registry.upsert_many([
        Device("pump-1", device_type="pump", organization="acme"),
        Device("meter-9", device_type="meter", organization="globex"),
    ])
    store.alerts.add(Alert("pump-1", "hot", Severity.CRITICAL, "hot pump", 91.0,
                           alert_id="acme-open"))
    resolved = Alert("pump-1", "hot", Severity.WARNING, "was hot", 80.0, alert_id="acme-done")
    store.alerts.add(resolved)
    store.alerts.save(resolved.resolve("someone", "fixed", at=utcnow()))
    store.alerts.add(Alert("meter-9", "leak", Severity.WARNING, "leak", alert_id="globex-open"))
    store.rules.add(AlertRule("Acme hot", "threshold", HOT, rule_id="acme-hot",
                              scope=RuleScope(organizations=frozenset({"acme"}))))
    return Fleet(store, backend)


def _rule(rule_id: str = "new-rule") -> AlertRule:
    return AlertRule("Hot", "threshold", HOT, rule_id=rule_id)


USE_CASES: list[UseCase[AlertsApi]] = [
    UseCase("alert.acknowledge", Permission.ALERT_HANDLE, "acme-open",
            lambda api: api.acknowledge("acme-open", "on it")),
    UseCase("alert.resolve", Permission.ALERT_HANDLE, "acme-open",
            lambda api: api.resolve("acme-open", "fixed")),
    UseCase("alert.snooze", Permission.ALERT_HANDLE, "acme-open",
            lambda api: api.snooze("acme-open", utcnow() + timedelta(hours=1))),
    UseCase("alert.reopen", Permission.ALERT_HANDLE, "acme-done",
            lambda api: api.reopen("acme-done", "not over")),
    UseCase("rule.add", Permission.RULE_EDIT, "new-rule", lambda api: api.add_rule(_rule())),
    UseCase("rule.edit", Permission.RULE_EDIT, "acme-hot",
            lambda api: api.save_rule(replace(api.get_rule("acme-hot"), name="Hotter",
                                              version=2))),
    UseCase("rule.delete", Permission.RULE_EDIT, "acme-hot",
            lambda api: api.delete_rule("acme-hot")),
]


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("case", USE_CASES, ids=lambda c: c.action)
def test_each_change_is_refused_to_roles_without_the_grant_and_audited_either_way(
        fleet: Fleet, case: UseCase[AlertsApi], role: Role) -> None:
    before = (fleet.store.alerts.list(), fleet.store.rules.list())
    if not run_as(fleet, role, case, fleet.session(role)):
        assert (fleet.store.alerts.list(), fleet.store.rules.list()) == before


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_bulk_actions_refuse_each_alert_and_audit_each_attempt(fleet: Fleet, role: Role) -> None:
    api = fleet.session(role)
    user = f"{role.value}-1"
    [result] = api.acknowledge_many(["acme-open"], "bulk")
    if Permission.ALERT_HANDLE in GRANTS[role]:
        assert result.ok and result.alert is not None \
            and result.alert.state is AlertState.ACKNOWLEDGED
        assert fleet.audit(user) == [("alert.acknowledge", "acme-open", "done")]
    else:
        assert not result.ok and "may not acknowledge" in result.error
        assert fleet.audit(user) == [("alert.acknowledge", "acme-open", "denied")]


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("action", ["import", "defaults"])
def test_importing_and_default_rules_need_rule_edit(fleet: Fleet, role: Role,
                                                    action: str) -> None:
    fleet.store.rules.delete("acme-hot")  # the default set goes only into an empty table
    api = fleet.session(role)
    user = f"{role.value}-1"
    run: Callable[[], Any] = ((lambda: api.import_rules([_rule("imported")]))
                              if action == "import" else api.add_default_rules)
    if Permission.RULE_EDIT in GRANTS[role]:
        run()
        entries = fleet.audit(user)
        assert entries and all(e[0] == "rule.add" and e[2] == "done" for e in entries)
        # what an organization's person adds watches that organization only
        assert all(r.scope.organizations == {"acme"} for r in fleet.store.rules.list())
    else:
        with pytest.raises(PermissionDenied):
            run()
        subject = "file" if action == "import" else "defaults"
        assert fleet.audit(user) == [(f"rule.{action if action == 'import' else 'add'}",
                                      subject, "denied")]
        assert fleet.store.rules.list() == []


def test_a_person_of_another_organization_cannot_see_or_handle_an_alert(fleet: Fleet) -> None:
    outsider = fleet.session(Role.ADMIN, organization="globex", user="gus")
    for call in (lambda: outsider.get_alert("acme-open"),
                 lambda: outsider.detail("acme-open"),
                 lambda: outsider.acknowledge("acme-open"),
                 lambda: outsider.resolve("acme-open"),
                 lambda: outsider.snooze("acme-open", utcnow() + timedelta(hours=1)),
                 lambda: outsider.reopen("acme-done"),
                 lambda: outsider.list_alerts(device_id="pump-1")):
        with pytest.raises(NotFound):
            call()
    [refused] = outsider.acknowledge_many(["acme-open"])
    assert not refused.ok and refused.alert is None
    assert [a.alert_id for a in outsider.list_alerts().items] == ["globex-open"]
    assert sum(outsider.counts().open.values()) == 1
    assert fleet.store.alerts.get("acme-open").state is AlertState.ACTIVE
    # an insider of acme sees its own, and the single-user console (no organization) all
    insider = fleet.session(Role.SUPPORT)
    assert {a.alert_id for a in insider.list_alerts().items} == {"acme-open", "acme-done"}
    owner = fleet.session(Role.ADMIN, organization="")
    assert len(owner.list_alerts().items) == 3


def test_rules_are_scoped_to_the_organization_they_apply_to(fleet: Fleet) -> None:
    fleet.store.rules.add(AlertRule("Everyone", "threshold", HOT, rule_id="global"))
    outsider = fleet.session(Role.ENGINEER, organization="globex", user="gus")
    assert [r.rule_id for r in outsider.list_rules()] == ["global"]
    with pytest.raises(NotFound):
        outsider.get_rule("acme-hot")
    with pytest.raises(NotFound):
        outsider.delete_rule("acme-hot")
    # a rule for every organization is visible, but not theirs to change: refused, audited
    with pytest.raises(PermissionDenied, match="applies beyond organization globex"):
        outsider.delete_rule("global")
    assert fleet.audit("gus") == [("rule.delete", "global", "denied")]
    added = outsider.add_rule(replace(_rule("theirs"), scope=RuleScope(
        organizations=frozenset({"acme"}))))
    assert added.scope.organizations == {"globex"}
    assert {r.rule_id for r in fleet.store.rules.list()} == {"acme-hot", "global", "theirs"}


def test_rules_are_checked_by_their_type_before_they_are_stored(fleet: Fleet) -> None:
    api = fleet.session(Role.ENGINEER)
    with pytest.raises(Exception, match="limit"):
        api.add_rule(AlertRule("Bad", "threshold", {"metric": "temperature"}, rule_id="bad"))
    assert {r.rule_id for r in fleet.store.rules.list()} == {"acme-hot"}


def test_rejected_messages_are_read_by_every_role_within_its_organization(
        fleet: Fleet) -> None:
    fleet.store.quarantine.add_many([
        QuarantinedMessage("dt/acme/pump-1/telemetry", "schema", "bad", b"{}",
                           device_id="pump-1"),
        QuarantinedMessage("dt/globex/meter-9/telemetry", "schema", "bad", b"{}",
                           device_id="meter-9"),
        QuarantinedMessage("dt/x", "topic", "malformed topic", b"?"),
    ])
    for role in Role:
        listing = fleet.session(role).list_quarantine()
        assert [m.device_id for m in listing.messages] == ["pump-1"]
        assert listing.counts == {"schema": 1}
    assert fleet.session(Role.SUPPORT).list_quarantine(device_id="meter-9").messages == []
    everything = fleet.session(Role.SUPPORT, organization="").list_quarantine()
    assert len(everything.messages) == 3 and everything.counts == {"schema": 2, "topic": 1}


def test_pages_are_cut_in_the_store_within_the_organization(fleet: Fleet) -> None:
    start = utcnow() - timedelta(hours=1)
    for i in range(6):
        fleet.store.alerts.add(Alert("pump-1", "hot", Severity.INFO, f"acme {i}",
                                     alert_id=f"acme-{i}", created_at=start + timedelta(
                                         minutes=i)))
        fleet.store.alerts.add(Alert("meter-9", "leak", Severity.INFO, f"globex {i}",
                                     alert_id=f"globex-{i}", created_at=start + timedelta(
                                         minutes=i, seconds=30)))
    api = fleet.session(Role.SUPPORT)
    seen: list[str] = []
    token, pages = "", 0
    while True:
        page = api.list_alerts(severities=frozenset({Severity.INFO}), limit=4, next_token=token)
        seen += [a.alert_id for a in page.items]
        pages += 1
        token = page.next
        if not token:
            break
    assert pages == 2 and seen == [f"acme-{i}" for i in reversed(range(6))]
