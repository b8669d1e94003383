"""Every mutating use case, every role: refused roles get PermissionDenied and
leave an audit entry saying so; allowed roles change the stored state and
leave an audit entry naming them. Real SQLite store; only the device-side
ports (command channel, shadow service) are small stand-ins, since what is
checked here is the service's decision and its trace, not the device."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from core.crypto import codesign
from core.crypto.keystore import CodeSigningKeys
from core.errors import PermissionDenied
from core.model import (
    Alert,
    AlertRule,
    Device,
    DeviceStatus,
    ExecutionStatus,
    Firmware,
    RuleScope,
    Severity,
)
from core.model.roles import GRANTS, Actor, Permission, Role
from core.model.rollout import JobConfig
from core.model.timeutil import utcnow
from core.ports.commands import CommandChannel, CommandOutcome, CommandResult
from core.ports.fleet_api import DeploymentsApi, FirmwareApi
from core.ports.fleet_api.deployments import TargetSpec
from core.ports.shadows import ShadowDocument, ShadowService
from core.ports.signing_keys import TrustedKey
from core.services.alerting.service import AlertService
from core.services.devices import DeviceService
from core.services.signing_keys import SigningKeyService
from core.store import Store
from tests.integration.firmware.sessions import fleet_api


class Channel(CommandChannel):
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, device_id: str, command: str, params: dict[str, Any] | None = None, *,
             timeout_s: float = 10.0) -> Future[CommandResult]:
        self.sent.append((device_id, command))
        future: Future[CommandResult] = Future()
        future.set_result(CommandResult(uuid.uuid4().hex, device_id, command, CommandOutcome.OK))
        return future


class Shadows(ShadowService):
    def __init__(self) -> None:
        self.docs: dict[str, ShadowDocument] = {}

    def get(self, device_id: str) -> ShadowDocument:
        return self.docs.get(device_id, ShadowDocument(device_id))

    def update_desired(self, device_id: str, desired: dict[str, Any], *,
                       expected_version: int | None = None) -> ShadowDocument:
        doc = self.get(device_id)
        new = ShadowDocument(device_id, {**doc.desired, **desired}, doc.reported,
                             doc.version + 1, utcnow())
        self.docs[device_id] = new
        return new


ENGINEER = Actor("erin", Role.ENGINEER)


class World:
    """One fresh store with a device, open and resolved alerts, a rule, and (on
    demand) firmware and a deployment with a failed device."""

    def __init__(self, tmp_path: Path, store: Store) -> None:
        self.tmp_path = tmp_path
        self.store = store
        self.channel = Channel()
        self.shadows = Shadows()
        # in the acting people's organization: the use cases answer a device of
        # another organization as unknown
        store.registry.upsert_many([Device(f"pump-{i}", device_type="pump", organization="acme",
                                           firmware_version="1.0.0") for i in range(3)])
        self.alert = Alert("pump-0", "hot", "critical", "hot", 90.0)
        store.alerts.add(self.alert)
        self.resolved = Alert("pump-1", "hot", "warning", "warm", 80.0).resolve("system")
        store.alerts.add(self.resolved)
        self.rule = AlertRule("Hot", "threshold", {"metric": "temp", "op": ">", "limit": 80},
                              Severity.WARNING, RuleScope(organizations=frozenset({"acme"})),
                              rule_id="hot")
        store.rules.add(self.rule)

    def devices(self) -> DeviceService:
        return DeviceService(self.store.registry, self.store.audit, commands=self.channel,
                             shadows=self.shadows)

    def alerts(self) -> AlertService:
        return AlertService(self.store.alerts, self.store.audit, rules=self.store.rules,
                            registry=self.store.registry)

    def library(self, actor: Actor) -> FirmwareApi:
        return fleet_api(self.store, self.keys, actor).firmware

    def ota(self, actor: Actor) -> DeploymentsApi:
        return fleet_api(self.store, self.keys, actor).deployments

    @cached_property
    def keys(self) -> CodeSigningKeys:
        return CodeSigningKeys(self.tmp_path / "codesign")

    @cached_property
    def firmware(self) -> Firmware:
        return self.library(ENGINEER).import_bytes(b"pump image" * 100, version="1.1.0",
                                                   device_type="pump")

    @cached_property
    def deployment_id(self) -> str:
        d = self.ota(ENGINEER).create(self.firmware.firmware_id,
                                      TargetSpec("list", device_ids=("pump-0", "pump-1")),
                                      JobConfig())
        self.store.deployments.release(d.deployment_id, d.targets)
        self.store.deployments.update_execution(d.deployment_id, "pump-0",
                                                ExecutionStatus.FAILED)
        return d.deployment_id


@dataclass(frozen=True)
class UseCase:
    action: str  # the audit entry's action
    permission: Permission
    subject: Callable[[World], str]
    call: Callable[[World, Actor], Any]
    prepare: Callable[[World], Any] = lambda w: None


COLLEAGUE = codesign.generate_key()  # a colleague's code-signing key, for the trust list


def _import(w: World, a: Actor) -> Any:
    return w.library(a).import_bytes(b"pump image 2" * 100, version="1.2.0",
                                     device_type="pump")


USE_CASES = [
    UseCase("alert.acknowledge", Permission.ALERT_HANDLE, lambda w: w.alert.alert_id,
            lambda w, a: w.alerts().acknowledge(w.alert.alert_id, a, "on it")),
    UseCase("alert.resolve", Permission.ALERT_HANDLE, lambda w: w.alert.alert_id,
            lambda w, a: w.alerts().resolve(w.alert.alert_id, a, "fixed")),
    UseCase("alert.snooze", Permission.ALERT_HANDLE, lambda w: w.alert.alert_id,
            lambda w, a: w.alerts().snooze(w.alert.alert_id, a, utcnow() + timedelta(hours=1))),
    UseCase("alert.reopen", Permission.ALERT_HANDLE, lambda w: w.resolved.alert_id,
            lambda w, a: w.alerts().reopen(w.resolved.alert_id, a, "not over")),
    UseCase("rule.add", Permission.RULE_EDIT, lambda w: "cold",
            lambda w, a: w.alerts().add_rule(
                AlertRule("Cold", "threshold", {"metric": "temp", "op": "<", "limit": 0},
                          rule_id="cold"), a)),
    UseCase("rule.edit", Permission.RULE_EDIT, lambda w: "hot",
            lambda w, a: w.alerts().save_rule(replace(w.rule, name="Hotter", version=2), a)),
    UseCase("rule.delete", Permission.RULE_EDIT, lambda w: "hot",
            lambda w, a: w.alerts().delete_rule("hot", a)),
    UseCase("device.register", Permission.DEVICE_REGISTER, lambda w: "valve-9",
            lambda w, a: w.devices().register(Device("valve-9", device_type="valve"), a)),
    UseCase("device.update", Permission.DEVICE_UPDATE, lambda w: "pump-0",
            lambda w, a: w.devices().update(
                replace(w.store.registry.get("pump-0"), name="Main pump"), a)),
    UseCase("device.decommission", Permission.DEVICE_DECOMMISSION, lambda w: "pump-0",
            lambda w, a: w.devices().decommission("pump-0", a)),
    UseCase("device.delete", Permission.DEVICE_DELETE, lambda w: "pump-2",
            lambda w, a: w.devices().delete("pump-2", a)),
    UseCase("device.command", Permission.DEVICE_COMMAND, lambda w: "pump-0",
            lambda w, a: w.devices().send_command("pump-0", "reboot", a).result()),
    UseCase("device.desired", Permission.DESIRED_STATE, lambda w: "pump-0",
            lambda w, a: w.devices().update_desired("pump-0", {"interval_s": 5}, a)),
    UseCase("firmware.import", Permission.FIRMWARE_IMPORT, lambda w: "pump@1.2.0", _import,
            prepare=lambda w: w.keys),
    UseCase("firmware.delete", Permission.FIRMWARE_DELETE, lambda w: w.firmware.firmware_id,
            lambda w, a: w.library(a).delete(w.firmware.firmware_id),
            prepare=lambda w: w.firmware),
    UseCase("deployment.create", Permission.DEPLOYMENT_CREATE,
            lambda w: w.firmware.firmware_id,
            lambda w, a: w.ota(a).create(w.firmware.firmware_id,
                                         TargetSpec("list", device_ids=("pump-2",)),
                                         JobConfig()),
            prepare=lambda w: w.firmware),
    UseCase("deployment.pause", Permission.DEPLOYMENT_CONTROL, lambda w: w.deployment_id,
            lambda w, a: w.ota(a).pause(w.deployment_id), prepare=lambda w: w.deployment_id),
    UseCase("deployment.resume", Permission.DEPLOYMENT_CONTROL, lambda w: w.deployment_id,
            lambda w, a: w.ota(a).resume(w.deployment_id), prepare=lambda w: w.deployment_id),
    UseCase("deployment.retry", Permission.DEPLOYMENT_CONTROL, lambda w: w.deployment_id,
            lambda w, a: w.ota(a).retry_failed(w.deployment_id),
            prepare=lambda w: w.deployment_id),
    UseCase("deployment.cancel", Permission.DEPLOYMENT_CANCEL, lambda w: w.deployment_id,
            lambda w, a: w.ota(a).cancel(w.deployment_id), prepare=lambda w: w.deployment_id),
    UseCase("firmware.key.add", Permission.SIGNING_KEYS, lambda w: codesign.key_id(COLLEAGUE),
            lambda w, a: SigningKeyService(w.store.trusted_keys, w.store.audit).add(
                codesign.public_pem(COLLEAGUE), "carol", a)),
    UseCase("firmware.key.revoke", Permission.SIGNING_KEYS, lambda w: codesign.key_id(COLLEAGUE),
            lambda w, a: SigningKeyService(w.store.trusted_keys, w.store.audit).revoke(
                codesign.key_id(COLLEAGUE), a),
            prepare=lambda w: w.store.trusted_keys.add(TrustedKey(
                codesign.key_id(COLLEAGUE), "carol", codesign.public_pem(COLLEAGUE), "ada",
                utcnow()))),
]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    # a machine without an OS keyring: the signing key lives in the encrypted file
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("SMARTIOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    with Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        yield World(tmp_path, store)


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("case", USE_CASES, ids=lambda c: c.action)
def test_each_use_case_checks_the_role_and_audits(world: World, case: UseCase,
                                                  role: Role) -> None:
    case.prepare(world)
    actor = Actor(f"{role.value}-user", role, organization="acme", claimed_user="maria")
    before = len(world.store.audit.entries())
    allowed = case.permission in GRANTS[role]
    if allowed:
        case.call(world, actor)
    else:
        with pytest.raises(PermissionDenied, match=f"{actor.user} \\({role.value}\\) may not"):
            case.call(world, actor)
    new = world.store.audit.entries(after_seq=0)[before:]
    mine = [e for e in new if e.actor == actor.user]
    assert [e.action for e in mine] == [case.action]
    [entry] = mine
    # a new deployment is recorded under its own id, with the firmware beside it
    assert case.subject(world) in (entry.subject, entry.details.get("firmware"))
    assert entry.details["role"] == role.value
    assert entry.details["organization"] == "acme"
    assert entry.details["claimed_user"] == "maria"  # noted, never the actor
    if allowed:
        assert "outcome" not in entry.details
    else:
        assert entry.details["outcome"] == "denied"
        assert entry.details["permission"] == case.permission.value
        assert "may not" in entry.details["reason"]
    assert world.store.audit.verify() is None


def test_a_refused_call_changes_nothing(world: World) -> None:
    support = Actor("sam", Role.SUPPORT)
    with pytest.raises(PermissionDenied):
        world.devices().send_command("pump-0", "reboot", support)
    with pytest.raises(PermissionDenied):
        world.devices().update_desired("pump-0", {"interval_s": 1}, support)
    with pytest.raises(PermissionDenied):
        world.alerts().delete_rule("hot", support)
    assert world.channel.sent == [] and world.shadows.docs == {}
    assert world.store.rules.get("hot") == world.rule
    assert world.store.registry.get("pump-0").status is not DeviceStatus.DECOMMISSIONED


def test_every_permission_has_a_use_case_in_the_table() -> None:
    covered = {c.permission for c in USE_CASES}
    # audit reads: test_audit_cli; the user directory: test_area_sessions
    assert covered == set(Permission) - {Permission.AUDIT_READ, Permission.USER_ADMIN}
