"""The analytics, users and audit use cases through the per-person sessions
(LocalFleetApi over the one wiring), on real SQLite and PostgreSQL stores:
each refuses the roles that may not call it and leaves an audit entry on
success and refusal; each answers within the caller's organization only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pytest

from core.errors import ConcurrentModification, NotFound, PermissionDenied, ValidationError
from core.model import Alert, Device, DeviceStatus, Reading
from core.model.analytics import HistoryRequest, SensorQuery
from core.model.roles import GRANTS, Actor, Permission, Role
from core.model.timeutil import utcnow
from core.ports.audit import AuditFilter
from core.ports.backend import Backend
from core.services.session import LocalFleetApi
from core.services.wiring import build_services
from core.store import Store
from core.store.preferences import SqlPreferenceStore
from tests.integration.store.conftest import (  # noqa: F401  (fixtures)
    open_store,
    store,
    store_url,
)

ADMIN = Actor("ada", Role.ADMIN)


def backend_over(store: Store) -> Backend:  # noqa: F811
    return Backend("local", registry=store.registry, alerts=store.alerts,
                   telemetry=store.telemetry, rules=store.rules, audit=store.audit,
                   preferences=SqlPreferenceStore(store.engine), users=store.users)


@pytest.fixture
def session(store: Store) -> Callable[[Actor], LocalFleetApi]:  # noqa: F811
    services = build_services(backend_over(store))
    return lambda actor: LocalFleetApi(services, actor)


@pytest.fixture
def fleet(store: Store) -> Store:  # noqa: F811
    """Two organizations, a reading each, an open alert each."""
    now = utcnow()
    store.registry.upsert_many([
        Device("acme-1", device_type="pump", organization="acme", status=DeviceStatus.ONLINE),
        Device("acme-2", device_type="valve", organization="acme"),
        Device("beta-1", device_type="pump", organization="beta", status=DeviceStatus.ONLINE),
    ])
    store.telemetry.write_batch([
        Reading(d, "temperature", now - timedelta(minutes=m), float(20 + m))
        for d in ("acme-1", "beta-1") for m in range(1, 30)])
    store.alerts.add(Alert("acme-1", "hot", "critical", "hot", 90.0))
    store.alerts.add(Alert("beta-1", "hot", "warning", "warm", 80.0))
    return store


def _entries(store: Store, actor: Actor) -> list:  # noqa: F811
    return [e for e in store.audit.entries(after_seq=0) if e.actor == actor.user]


# ---------------------------------------------------------------------- analytics
def test_dashboard_counts_only_the_callers_organization(session, fleet) -> None:
    acme = session(Actor("al", Role.SUPPORT, organization="acme")).analytics.dashboard()
    assert (acme.stats.total, acme.stats.online, acme.stats.by_type) == (
        2, 1, {"pump": 1, "valve": 1})
    assert acme.open_alerts == 1 and acme.alerts_by_severity["critical"] == 1
    everyone = session(ADMIN).analytics.dashboard()
    assert everyone.stats.total == 3 and everyone.open_alerts == 2
    assert everyone.as_dict()["by_type"] == {"pump": 2, "valve": 1}


def test_sensor_query_and_history_refuse_other_organizations(session, fleet) -> None:
    analytics = session(Actor("al", Role.TECHNICIAN, organization="acme")).analytics
    end = utcnow()
    start = end - timedelta(hours=1)
    [series] = analytics.sensor_query(SensorQuery(("acme-1",), "temperature", start, end, 600))
    assert series.bucket_ms == 600_000 and int(np.sum(series.count)) == 29
    with pytest.raises(NotFound, match="beta-1"):
        analytics.sensor_query(SensorQuery(("beta-1",), "temperature", start, end))
    with pytest.raises(NotFound, match="beta-1"):
        analytics.history(HistoryRequest(("beta-1",), ("temperature",), start, end))
    with pytest.raises(NotFound):
        analytics.metrics(["beta-1"])
    assert analytics.metrics(["acme-1"]) == ["temperature"]
    assert [d.device_id for d in analytics.devices()] == ["acme-1", "acme-2"]
    history = analytics.history(HistoryRequest(("acme-1",), ("temperature",), start, end))
    assert len(history.series[0]) == 29 and [m.device_id for m in history.marks] == ["acme-1"]
    with pytest.raises(ValidationError, match="bucket_s"):
        analytics.sensor_query(SensorQuery(("acme-1",), "temperature", start, end, 0.5))


def test_overview_is_scoped(session, fleet) -> None:
    overview = session(Actor("al", Role.SUPPORT, organization="acme")).analytics.overview()
    assert overview.stats.total == 2
    assert [d for d, _ in overview.top] == ["acme-1"]
    assert sum(int(c.sum()) for c in overview.alerts_per_hour.values()) == 1


# ---------------------------------------------------------------------- users
USER_CASES = [
    ("user.add", lambda api: api.users.add("bob", "technician", "acme"), "bob"),
    ("user.role", lambda api: api.users.set_role("carol", Role.ENGINEER), "carol"),
    ("user.disable", lambda api: api.users.set_disabled("carol", True), "carol"),
    ("user.list", lambda api: api.users.list(), "users"),
]


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("case", USER_CASES, ids=lambda c: c[0])
def test_user_directory_is_for_admins_and_audited(session, store, role, case) -> None:  # noqa: F811
    action, call, subject = case
    session(ADMIN).users.add("carol", Role.SUPPORT, "acme")
    actor = Actor(f"{role.value}-1", role, organization="acme", claimed_user="maria")
    allowed = Permission.USER_ADMIN in GRANTS[role]
    assert allowed is (role is Role.ADMIN)
    if allowed:
        call(session(actor))
    else:
        with pytest.raises(PermissionDenied, match="may not list, add, disable"):
            call(session(actor))
    mine = _entries(store, actor)
    if allowed and action == "user.list":
        assert mine == []  # reading the directory changes nothing
        return
    [entry] = mine
    assert (entry.action, entry.subject) == (action, subject)
    assert entry.details["role"] == role.value and entry.details["claimed_user"] == "maria"
    assert entry.details.get("outcome") == (None if allowed else "denied")
    assert store.audit.verify() is None


def test_directory_changes_are_stored_and_scoped(session, store, open_store) -> None:  # noqa: F811
    admin = session(ADMIN).users
    bob = admin.add(" bob ", "technician", "acme")
    assert (bob.name, bob.role, bob.organization, bob.disabled, bob.created_by) == (
        "bob", Role.TECHNICIAN, "acme", False, "ada")
    with pytest.raises(ConcurrentModification, match="already exists"):
        admin.add("bob", "support")
    with pytest.raises(ValidationError, match="role: 'boss' is not one of"):
        admin.add("dave", "boss")
    with pytest.raises(ValidationError, match="name:"):
        admin.add("no spaces please", "support")
    admin.add("erin", Role.ENGINEER, "beta")
    assert admin.set_role("bob", Role.ENGINEER).role is Role.ENGINEER
    assert admin.set_disabled("bob", True).disabled
    # another console on the same database reads what was saved
    other = open_store()
    assert other.users.get("bob").disabled and other.users.get("bob").version == 3
    # an admin of acme sees and changes acme's people only, and adds into acme
    acme_admin = session(Actor("ann", Role.ADMIN, organization="acme")).users
    assert [u.name for u in acme_admin.list()] == ["bob"]
    with pytest.raises(NotFound, match="erin"):
        acme_admin.set_role("erin", Role.SUPPORT)
    assert acme_admin.add("fay", "support", "beta").organization == "acme"
    entries = [(e.action, e.subject) for e in _entries(store, ADMIN)]
    assert entries == [("user.add", "bob"), ("user.add", "erin"), ("user.role", "bob"),
                       ("user.disable", "bob")]


def test_a_directory_entry_sets_role_and_organization_and_disabled_is_refused(
        session, store) -> None:  # noqa: F811
    services_api = session(ADMIN)
    users = services_api.services.users
    stranger = Actor("nobody", Role.ADMIN, claimed_user="x")
    assert users.effective_actor(stranger) == stranger  # no entry: unchanged
    services_api.users.add("sam", Role.SUPPORT, "acme")
    sam = users.effective_actor(Actor("sam", Role.ADMIN))
    assert (sam.role, sam.organization) == (Role.SUPPORT, "acme")
    services_api.users.set_disabled("sam", True)
    with pytest.raises(PermissionDenied, match="sam is disabled"):
        users.effective_actor(Actor("sam", Role.ADMIN))
    # an admin with an entry cannot lock themselves out of the directory
    services_api.users.add("ada", Role.ADMIN)
    with pytest.raises(ValidationError, match="cannot disable their own"):
        services_api.users.set_disabled("ada", True)
    with pytest.raises(ValidationError, match="cannot change their own role"):
        services_api.users.set_role("ada", Role.SUPPORT)


# ---------------------------------------------------------------------- audit
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_audit_reads_need_audit_read_and_are_paged(session, store, role) -> None:  # noqa: F811
    for i in range(7):
        store.audit.append("someone", "device.update", f"pump-{i}", {"role": "admin"})
    actor = Actor(f"{role.value}-1", role, organization="acme")
    audit = session(actor).audit
    if Permission.AUDIT_READ not in GRANTS[role]:
        for call in (lambda: audit.page(), lambda: audit.verify(),
                     lambda: audit.export("csv"), lambda: audit.list()):
            with pytest.raises(PermissionDenied):
                call()
        assert [e.details["outcome"] for e in _entries(store, actor)] == ["denied"] * 4
        return
    first = audit.page(AuditFilter(action="device.update"), limit=3)
    assert [e.subject for e in first.items] == ["pump-6", "pump-5", "pump-4"] and first.next
    second = audit.page(AuditFilter(action="device.update"), limit=3, next_token=first.next)
    third = audit.page(AuditFilter(action="device.update"), limit=3, next_token=second.next)
    assert [e.subject for e in second.items + third.items] == [
        "pump-3", "pump-2", "pump-1", "pump-0"]
    assert third.next == ""
    report = audit.verify()
    assert report.entries == 7  # (not signed: these rows were appended without the anchor)
    assert [e.action for e in _entries(store, actor)] == ["audit.verify"]
