"""HttpFleetApi against LocalFleetApi: the same scenarios, one through the
in-process session and one over real HTTP (plugins/api/wsgi.py on a loopback
port), each on its own fresh store (SQLite; PostgreSQL when
SMARTIOT_TEST_PG_URL is set), give the same answers and leave the same audit
trail. And the server's refusals reach the caller as the domain's exceptions."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from core.crypto.keystore import CodeSigningKeys
from core.errors import ConcurrentModification, NotFound, PermissionDenied, ValidationError
from core.model import Alert, Device, Firmware, Location, SemVer, Severity
from core.model.analytics import HistoryRequest, SensorQuery
from core.model.link import QuarantinedMessage
from core.model.roles import Actor, Role
from core.model.rollout import JobConfig
from core.model.rule import AlertRule
from core.ports.audit import AuditFilter
from core.ports.fleet_api import FleetApi
from core.ports.fleet_api.deployments import TargetSpec
from core.ports.signing_keys import TrustedKey
from core.services.session import LocalFleetApi
from core.store import Store, create_store_engine
from core.store.preferences import SqlPreferenceStore
from plugins.api import shapes
from plugins.api.client import FieldError, HttpFleetApi, HubUnreachable, StaticToken
from plugins.api.client.errors import Conflict
from plugins.api.wiring import build_api_services
from tests.integration.api.conftest import Api, backend_over, start_api
from tests.integration.store.conftest import PG_ENV, PG_SKIP_REASON

ORG = "demo"
IMAGE = b"pump firmware 2.0.0" * 64


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite"), pytest.param(
    "postgresql", id="postgresql", marks=[pytest.mark.postgres, pytest.mark.skipif(
        not os.environ.get(PG_ENV), reason=PG_SKIP_REASON)])])
def open_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], Store]]:
    """Fresh databases on demand: one per front end, so their trails compare."""
    opened: list[Store] = []
    schemas: list[str] = []

    def _open(name: str) -> Store:
        if request.param == "sqlite":
            store = Store.open(f"sqlite:///{tmp_path / name / 'store.db'}")
        else:
            schema = f"c_{uuid.uuid4().hex[:16]}"
            admin = create_store_engine(os.environ[PG_ENV])
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            admin.dispose()
            schemas.append(schema)
            store = Store.open(os.environ[PG_ENV],
                               connect_args={"options": f"-csearch_path={schema}"})
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()
    if schemas:
        admin = create_store_engine(os.environ[PG_ENV])
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _seed(store: Store, keys: Path, user: str) -> Firmware:
    """The same starting fleet in each store: two pumps, an alert on one, an image
    signed with a key the team trusts."""
    for n in (1, 2):
        store.registry.upsert(Device(f"pump-{n}", name=f"Pump {n}", device_type="pump",
                                     organization=ORG))
    store.alerts.add(Alert("pump-1", "rule-high", Severity.WARNING, "pressure high", 9.5,
                           alert_id="alert-1"))
    signing = CodeSigningKeys(keys)
    signature, key_id = signing.sign(IMAGE)
    store.trusted_keys.add(TrustedKey(key_id, user, signing.public_path.read_bytes(),
                                      added_by="admin", added_at=datetime.now(UTC)))
    firmware = Firmware(SemVer.parse("2.0.0"), "pump", len(IMAGE),
                        hashlib.sha256(IMAGE).hexdigest(), signature, key_id)
    store.firmware.add(firmware, IMAGE)
    return firmware


@dataclass
class Pair:
    local: LocalFleetApi
    http: HttpFleetApi
    local_store: Store
    http_store: Store
    server: Api

    def both(self) -> list[tuple[FleetApi, Store]]:
        http: FleetApi = self.http  # type-checked: HttpFleetApi implements the port
        return [(self.local, self.local_store), (http, self.http_store)]

    def session(self, role: Role, user: str = "") -> HttpFleetApi:
        token = self.server.client.tokens.issue(user or f"{role.value}-1", role, ORG)
        return HttpFleetApi(self.server.client.base, StaticToken(token), retries=0)


@pytest.fixture
def pair(open_db: Callable[[str], Store], tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Pair]:
    monkeypatch.setenv("SMARTIOT_CODESIGN_PASSPHRASE", "correct horse battery staple")
    actor = Actor("alice", Role.ADMIN, ORG)
    local_store, http_store = open_db("local"), open_db("http")
    _seed(local_store, tmp_path / "local" / "codesign", actor.user)
    _seed(http_store, tmp_path / "http" / "codesign", actor.user)
    services = build_api_services(backend_over(local_store),
                                  signing_keys=CodeSigningKeys(tmp_path / "local" / "codesign"),
                                  preferences=SqlPreferenceStore(local_store.engine))
    local = LocalFleetApi(services, actor)
    gen = start_api(http_store, tmp_path / "http")  # a generator: closed when done
    server = next(gen)
    token = server.client.tokens.issue(actor.user, actor.role, ORG)
    http = HttpFleetApi(server.client.base, StaticToken(token), retries=0)
    try:
        yield Pair(local, http, local_store, http_store, server)
    finally:
        gen.close()  # type: ignore[attr-defined]


_VOLATILE = {"created_at", "updated_at", "last_seen", "acknowledged_at", "resolved_at", "ts",
             "hash", "prev_hash", "seq", "deployment_id", "key_id", "sha256_key"}


def _plain(value: Any) -> Any:
    """Times and generated ids differ between two runs; everything else must not."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in sorted(value.items()) if k not in _VOLATILE}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _trail(store: Store) -> list[Any]:
    return [_plain({"actor": e.actor, "action": e.action,
                    "subject": "<deployment>" if e.subject.startswith("ota-") else e.subject,
                    "details": e.details}) for e in store.audit.search(None)
            if not e.action.startswith("audit.")]


def _same(pair: Pair, scenario: Callable[[FleetApi], Any]) -> Any:
    """Run ``scenario`` on both sessions; their plain answers and trails must match."""
    answers = [_plain(scenario(api)) for api, _store in pair.both()]
    assert answers[1] == answers[0]
    assert _trail(pair.http_store) == _trail(pair.local_store)
    return answers[0]


def test_the_http_session_is_a_fleet_api_acting_for_the_server_s_person(pair: Pair) -> None:
    api: FleetApi = pair.http  # type-checked: HttpFleetApi implements the port
    assert api.actor == Actor("alice", Role.ADMIN, ORG)
    assert pair.session(Role.SUPPORT, "bob").actor.role is Role.SUPPORT


def test_devices_register_update_list_overview(pair: Pair) -> None:
    def scenario(api: FleetApi) -> Any:
        added = api.devices.register(Device("pump-3", name="Pump 3", device_type="pump",
                                            organization=ORG, tags=frozenset({"hall-a"}),
                                            location=Location(48.1, 11.5, "hall A")))
        edited = api.devices.update(replace(added, name="Pump three",
                                            tags=frozenset({"hall-b"})))
        page = api.devices.list(limit=2)
        rest = api.devices.list(limit=2, next_token=page.next)
        view = api.devices.overview()
        return {"added": shapes.device(added), "edited": shapes.device(edited),
                "pages": [[d.device_id for d in page.items], [d.device_id for d in rest.items]],
                "all": [shapes.device(d) for d in api.devices.all()],
                "overview": [[d.device_id for d in view.devices], view.alert_counts,
                             {k: v.value for k, v in view.worst.items()}],
                "got": shapes.device(api.devices.get("pump-3"))}

    result = _same(pair, scenario)
    assert result["edited"]["name"] == "Pump three"
    assert result["pages"] == [["pump-1", "pump-2"], ["pump-3"]]
    assert result["overview"][1] == {"pump-1": 1}
    assert [e["action"] for e in _trail(pair.http_store)] == ["device.register",
                                                             "device.update"]


def test_alerts_acknowledge_and_resolve(pair: Pair) -> None:
    def scenario(api: FleetApi) -> Any:
        acked = api.alerts.acknowledge("alert-1", "on my way")
        counts = api.alerts.counts()
        resolved = api.alerts.resolve("alert-1", "valve replaced")
        again = api.alerts.acknowledge_many(["alert-1"])
        listed = api.alerts.list_alerts(device_id="pump-1")
        return {"acked": shapes.alert(acked), "resolved": shapes.alert(resolved),
                "counts": {k.value: v for k, v in counts.open.items()},
                "again": [(r.alert_id, r.ok, r.error, None if r.alert is None
                           else r.alert.state.value) for r in again],
                "listed": [shapes.alert(a) for a in listed.items]}

    result = _same(pair, scenario)
    assert result["acked"]["state"] == "acknowledged"
    assert result["resolved"]["state"] == "resolved"
    assert result["again"][0][1] is False and result["again"][0][2]
    actions = [e["action"] for e in _trail(pair.http_store)]
    assert actions[:2] == ["alert.acknowledge", "alert.resolve"]


def test_firmware_list_and_verify(pair: Pair) -> None:
    def unsigned_shape(f: Firmware) -> dict[str, Any]:
        # Each store was seeded with the image signed by its own key (key ids are
        # volatile here too), so the signature bytes legitimately differ; that each
        # is there and verifies is "signed" and the report's signature_ok.
        shape = shapes.firmware(f)
        assert shape.pop("signature")
        return shape

    def scenario(api: FleetApi) -> Any:
        listed = api.firmware.list()
        report = api.firmware.verify("pump@2.0.0")
        return {"listed": [unsigned_shape(f) for f in listed],
                "report": [report.sha256_ok, report.signature_ok, report.key_trusted],
                "got": unsigned_shape(api.firmware.get("pump@2.0.0")),
                "signed": [f.is_signed for f in listed],
                "versions": {k: dict(v) for k, v in
                             api.firmware.version_distribution().items()}}

    result = _same(pair, scenario)
    assert result["report"] == [True, True, True]
    assert result["versions"] == {"pump": {"unknown": 2}}
    # the signature itself travels (not just its key id): the library shows it signed
    assert result["signed"] == [True] * len(result["listed"])


def test_the_team_s_trusted_keys_listed_added_and_revoked(pair: Pair, tmp_path: Path) -> None:
    newcomer = CodeSigningKeys(tmp_path / "bob-keys")
    newcomer.sign(b"anything")  # creates bob's key pair
    pem = newcomer.public_path.read_bytes()

    def scenario(api: FleetApi) -> Any:
        before = api.firmware.trusted_keys()
        added = api.firmware.trust_key(pem, "bob", note="bob's laptop")
        with pytest.raises(ValidationError) as twice:  # a key is trusted once
            api.firmware.trust_key(pem, "bob")
        with pytest.raises(ValidationError):
            api.firmware.trust_key(b"not a key", "mallory")
        revoked = api.firmware.revoke_key(added.key_id)
        return {"before": [(k.owner, k.added_by, k.active) for k in before],
                "added": [added.key_id, added.owner, added.public_pem, added.added_by,
                          added.note, added.active],
                "twice": str(twice.value),
                "revoked": [revoked.key_id, revoked.revoked_by, revoked.active],
                "active": [k.owner for k in api.firmware.trusted_keys()],
                "all": sorted((k.owner, k.active) for k in
                              api.firmware.trusted_keys(include_revoked=True))}

    result = _same(pair, scenario)
    assert result["added"][1:] == ["bob", pem, "alice", "bob's laptop", True]
    assert result["revoked"][1:] == ["alice", False]
    assert result["active"] == ["alice"]
    assert result["all"] == [["alice", True], ["bob", False]]
    assert [e["action"] for e in _trail(pair.http_store)][:2] == ["firmware.key.add",
                                                                 "firmware.key.revoke"]
    with pytest.raises(PermissionDenied):  # only admins change what the fleet trusts
        pair.session(Role.ENGINEER).firmware.trust_key(pem, "bob")
    assert _trail(pair.http_store)[-1]["action"] == "firmware.key.add"


def test_deployment_plan_create_status(pair: Pair) -> None:
    spec = TargetSpec(kind="list", device_ids=("pump-1", "pump-2", "ghost"))
    stores = iter([pair.local_store, pair.http_store])

    def scenario(api: FleetApi) -> Any:
        store = next(stores)
        plan = api.deployments.plan("pump@2.0.0", spec)
        created = api.deployments.create("pump@2.0.0", TargetSpec(
            kind="list", device_ids=("pump-1", "pump-2")), JobConfig(), description="spring")
        store.deployments.release(created.deployment_id, ["pump-1"])  # as the rollout engine
        status = api.deployments.status(created.deployment_id)
        listed = api.deployments.list()
        executions = api.deployments.executions(created.deployment_id)
        return {"plan": [list(plan.targets), {k: list(v) for k, v in plan.skipped.items()}],
                "created": shapes.deployment(created),
                "status": [shapes.deployment(status.deployment), status.counts],
                "listed": [p.deployment.description for p in listed],
                "executions": [(e.device_id, e.status.value, e.execution_number)
                               for e in executions]}

    result = _same(pair, scenario)
    assert result["plan"] == [["pump-1", "pump-2"], {"unknown device": ["ghost"]}]
    assert result["created"]["targets"] == ["pump-1", "pump-2"]
    assert result["executions"] == [["pump-1", "QUEUED", 1]]
    assert "deployment.create" in [e["action"] for e in _trail(pair.http_store)]


def test_alert_rules_defaults_and_edits(pair: Pair) -> None:
    def scenario(api: FleetApi) -> Any:
        added = api.alerts.add_default_rules()
        with pytest.raises(ValidationError) as again:  # only into an empty table
            api.alerts.add_default_rules()
        first = sorted(added, key=lambda r: r.name)[0]
        saved = api.alerts.save_rule(replace(first, enabled=False, version=first.version + 1))
        api.alerts.delete_rule(saved.rule_id)
        return {"added": sorted(r.name for r in added), "again": str(again.value),
                "saved": [saved.name, saved.enabled, saved.version],
                "rules": sorted(r.name for r in api.alerts.list_rules())}

    result = _same(pair, scenario)
    assert result["added"] and "already has alert rules" in result["again"]
    assert result["saved"][1] is False and len(result["rules"]) == len(result["added"]) - 1


def test_alert_rules_import_adds_updates_and_keeps(pair: Pair) -> None:
    rule = AlertRule(name="Pressure high", rule_type="threshold",
                     params={"metric": "pressure", "op": "above", "limit": 9.0},
                     severity=Severity.CRITICAL, rule_id="rule-pressure")
    other = AlertRule(name="Temperature high", rule_type="threshold",
                      params={"metric": "temperature", "op": "above", "limit": 80.0},
                      rule_id="rule-temp")

    def scenario(api: FleetApi) -> Any:
        first = api.alerts.import_rules([rule, other])
        again = api.alerts.import_rules([replace(rule, severity=Severity.WARNING), other])
        return {"first": [[r.rule_id for r in first.added], first.updated, first.unchanged],
                "again": [again.added, [(r.rule_id, r.severity.value, r.version)
                                        for r in again.updated],
                          [r.rule_id for r in again.unchanged]],
                "rules": sorted((r.rule_id, sorted(r.scope.organizations))
                                for r in api.alerts.list_rules())}

    result = _same(pair, scenario)
    assert result["first"] == [["rule-pressure", "rule-temp"], [], []]
    assert result["again"] == [[], [["rule-pressure", "warning", 2]], ["rule-temp"]]
    assert result["rules"] == [["rule-pressure", [ORG]], ["rule-temp", [ORG]]]
    with pytest.raises(PermissionDenied):
        pair.session(Role.SUPPORT).alerts.import_rules([other])


def test_quarantine_lists_the_organization_s_rejected_input(pair: Pair) -> None:
    at = datetime.now(UTC).replace(microsecond=0)
    for store in (pair.local_store, pair.http_store):
        store.quarantine.add_many([
            QuarantinedMessage("fleet/pump-1/telemetry", "schema", "value: not a number",
                               b'{"value": "x"}', device_id="pump-1", received_at=at),
            QuarantinedMessage("fleet/pump-2/telemetry", "too_large", "120 kB",
                               b"\xff\x00", device_id="pump-2", received_at=at),
            QuarantinedMessage("fleet/ghost/telemetry", "unknown_device", "not registered",
                               b"{}", device_id="ghost", received_at=at)])

    def scenario(api: FleetApi) -> Any:
        assert api.alerts.features().quarantine
        every = api.alerts.list_quarantine()
        schema = api.alerts.list_quarantine(reason="schema")
        one = api.alerts.list_quarantine(device_id="pump-2", limit=1)
        return {"every": [(m.device_id, m.reason, m.detail, m.payload, m.received_at,
                           m.topic) for m in every.messages], "counts": every.counts,
                "schema": [m.device_id for m in schema.messages],
                "one": [(m.device_id, m.payload) for m in one.messages]}

    result = _same(pair, scenario)
    # A device of no organization is shown only to the hub's operator.
    assert sorted(d for d, *_ in result["every"]) == ["pump-1", "pump-2"]
    assert result["counts"] == {"schema": 1, "too_large": 1}
    assert result["schema"] == ["pump-1"]
    assert result["one"] == [["pump-2", b"\xff\x00"]]
    with pytest.raises(ValidationError):
        pair.http.alerts.list_quarantine(limit=0)


def test_analytics_dashboard_and_query(pair: Pair) -> None:
    from core.model import Reading

    now = datetime.now(UTC).replace(microsecond=0)
    for store in (pair.local_store, pair.http_store):
        store.telemetry.write_batch([Reading("pump-1", "pressure", now - timedelta(minutes=m),
                                       float(m)) for m in range(5)])

    def scenario(api: FleetApi) -> Any:
        dash = api.analytics.dashboard()
        series = api.analytics.sensor_query(SensorQuery(
            ("pump-1",), "pressure", now - timedelta(hours=1), now + timedelta(minutes=1)))
        view = api.analytics.overview(top_metric="pressure", hours=2)
        history = api.analytics.history(HistoryRequest(
            ("pump-1",), ("pressure",), now - timedelta(hours=1), now + timedelta(minutes=1)))
        return {"dashboard": dash.as_dict(), "series": [shapes.series(s) for s in series],
                "devices": [(d.device_id, d.status.value) for d in api.analytics.devices()],
                "metrics": api.analytics.metrics(["pump-1", "pump-2"]),
                "overview": [view.stats.as_dashboard(), view.top_metric, view.top,
                             view.firmware, {k: v.tolist() for k, v in
                                             view.alerts_per_hour.items()},
                             view.online_count.tolist(), view.metrics],
                "history": [[shapes.series(s) for s in history.series], history.thresholds,
                            [(m.device_id, m.severity, m.message) for m in history.marks]],
                "thresholds": api.analytics.thresholds(["pressure"])}

    result = _same(pair, scenario)
    assert result["dashboard"]["total"] == 2
    assert result["series"][0]["value"] == [4.0, 3.0, 2.0, 1.0, 0.0]
    assert result["metrics"] == ["pressure"]
    assert result["overview"][2] == [["pump-1", 0.0]]  # the newest reading tops
    assert result["history"][0] == result["series"]


def test_users_me_and_preferences(pair: Pair) -> None:
    def scenario(api: FleetApi) -> Any:
        first = api.users.preferences()
        saved = api.users.set_preferences({"theme": "dark"}, expected_version=first.version)
        with pytest.raises(ConcurrentModification):
            api.users.set_preferences({"theme": "light"}, expected_version=first.version)
        return {"me": api.users.me(), "saved": shapes.preferences(saved),
                "again": shapes.preferences(api.users.preferences())}

    result = _same(pair, scenario)
    assert result["me"]["role"] == "admin" and result["saved"]["preferences"] == {
        "theme": "dark"}


def test_an_admin_sets_someone_s_password(pair: Pair) -> None:
    from core.crypto.passwords import verify_password

    def scenario(api: FleetApi) -> Any:
        api.users.add("bob", Role.TECHNICIAN)
        account = api.users.set_password("bob", "a long new secret")
        with pytest.raises(NotFound):
            api.users.set_password("nobody", "a long new secret")
        return [account.name, account.role.value, account.organization]

    assert _same(pair, scenario) == ["bob", "technician", ORG]
    for store in (pair.local_store, pair.http_store):
        assert verify_password(store.accounts.password_hash("bob"), "a long new secret")
    with pytest.raises(PermissionDenied):
        pair.session(Role.ENGINEER).users.set_password("bob", "mine now")
    assert _trail(pair.http_store)[-1]["action"] == "user.password"


def test_audit_list(pair: Pair) -> None:
    def scenario(api: FleetApi) -> Any:
        api.alerts.acknowledge("alert-1")
        newest = api.audit.page(AuditFilter(action="alert."), limit=10)
        oldest = api.audit.list(AuditFilter(limit=1))
        exported = api.audit.export("json", AuditFilter(action="alert."))
        return {"exported": [exported.entries, '"alert.acknowledge"' in exported.text],
                "newest": [(e.actor, e.action, e.subject) for e in newest.items],
                "oldest": [(e.actor, e.action, e.subject) for e in oldest],
                "verified": api.audit.verify().ok}

    result = _same(pair, scenario)
    assert result["newest"] == [["alice", "alert.acknowledge", "alert-1"]]
    assert result["exported"][1] is True


# ------------------------------------------------------------------ errors
def test_refusals_reach_the_caller_as_the_domain_s_exceptions(pair: Pair) -> None:
    support = pair.session(Role.SUPPORT, "sam")
    with pytest.raises(PermissionDenied, match="support"):
        support.devices.register(Device("pump-9", device_type="pump", organization=ORG))
    denied = [e for e in pair.http_store.audit.search(None) if e.actor == "sam"]
    assert [e.action for e in denied] == ["device.register"]  # refused on the server, audited

    with pytest.raises(NotFound, match="ghost"):
        pair.http.devices.get("ghost")

    device = pair.http.devices.get("pump-1")
    pair.http.devices.update(device)
    with pytest.raises(ConcurrentModification) as stale:
        pair.http.devices.update(device)  # the version it was read at is gone
    assert isinstance(stale.value, Conflict) and "changed" in str(stale.value)

    pair.http.alerts.acknowledge("alert-1")
    with pytest.raises(Conflict):
        pair.http.alerts.acknowledge("alert-1")

    with pytest.raises(ValidationError) as bad:
        pair.http.devices.register(Device("pump-9", device_type="pump", organization=ORG,
                                          name="x" * 300))
    assert isinstance(bad.value, FieldError) and bad.value.field == "name"


def test_an_unreachable_hub_is_one_clear_error_after_retrying_reads() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    pauses: list[float] = []
    api = HttpFleetApi(f"http://127.0.0.1:{port}", StaticToken("t"), retries=2,
                       backoff_s=0.01)
    api.http._sleep = pauses.append
    with pytest.raises(HubUnreachable, match=rf"the hub at http://127.0.0.1:{port} cannot be "
                       "reached"):
        api.devices.get("pump-1")
    assert len(pauses) == 2 and pauses[1] > pauses[0] / 2  # retried with backoff
    pauses.clear()
    with pytest.raises(HubUnreachable, match="not retried"):
        api.alerts.acknowledge("alert-1")
    assert pauses == []  # a change is never sent twice blindly
