"""Every firmware and deployment use case, as a front end calls it (the
person's session over the one wiring), on SQLite and PostgreSQL: the roles
without the grant are refused and the refusal is in the audit trail with the
permission; a role with it changes the store and is audited by name and role.
Then organization scope: a person in one organization neither targets nor sees
another's devices and deployments, and the team signer refuses untrusted keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from core.crypto import codesign
from core.crypto.keystore import CodeSigningKeys
from core.errors import NotFound, PermissionDenied, ValidationError
from core.model import DeploymentStatus, Device, ExecutionStatus, Firmware
from core.model.roles import GRANTS, Actor, Permission, Role
from core.model.rollout import JobConfig
from core.model.timeutil import utcnow
from core.ports.fleet_api.deployments import TargetSpec
from core.ports.signing_keys import TrustedKey
from core.services.session import LocalFleetApi
from core.store import Store
from tests.integration.firmware.sessions import fleet_api
from tests.integration.store.conftest import (  # noqa: F401  (fixtures: SQLite and PostgreSQL)
    open_store,
    store,
    store_url,
)

COLLEAGUE = codesign.generate_key()  # someone else's code-signing key, for the trust list
IMAGE = b"pump image " * 200


def person(role: Role, org: str = "acme") -> Actor:
    return Actor(f"{role.value}-1", role, organization=org)


class World:
    """A fresh store: acme's three pumps, globex's pump, a signed image and (on
    demand) a deployment to two acme pumps with one failed device."""

    def __init__(self, store: Store, keys: CodeSigningKeys) -> None:  # noqa: F811
        self.store = store
        self.keys = keys
        store.registry.upsert_many(
            [Device(f"pump-{i}", device_type="pump", organization="acme",
                    firmware_version="1.0.0") for i in range(3)]
            + [Device("pump-g", device_type="pump", organization="globex",
                      firmware_version="0.9.0")])
        self._firmware: Firmware | None = None
        self._deployment: str | None = None

    def api(self, actor: Actor) -> LocalFleetApi:
        return fleet_api(self.store, self.keys, actor)

    @property
    def firmware(self) -> Firmware:
        if self._firmware is None:
            self._firmware = self.api(person(Role.ENGINEER)).firmware.import_bytes(
                IMAGE, version="1.1.0", device_type="pump")
        return self._firmware

    @property
    def deployment_id(self) -> str:
        if self._deployment is None:
            d = self.api(person(Role.ENGINEER)).deployments.create(
                self.firmware.firmware_id, TargetSpec("list", device_ids=("pump-0", "pump-1")),
                JobConfig())
            self.store.deployments.release(d.deployment_id, d.targets)
            self.store.deployments.update_execution(d.deployment_id, "pump-0",
                                                    ExecutionStatus.FAILED)
            self._deployment = d.deployment_id
        return self._deployment


@dataclass(frozen=True)
class UseCase:
    action: str  # the audit entry's action
    permission: Permission
    subject: Callable[[World], str]
    call: Callable[[World, LocalFleetApi], Any]
    changed: Callable[[World], bool]  # the store shows the change
    prepare: Callable[[World], Any] = lambda w: None
    # the success entry names what was made when that differs from what was asked
    made: Callable[[World], str] | None = None


def _trust_colleague(w: World) -> None:
    w.store.trusted_keys.add(TrustedKey(codesign.key_id(COLLEAGUE), "carol",
                                        codesign.public_pem(COLLEAGUE), "ada", utcnow()))


def _status(w: World) -> DeploymentStatus:
    return w.store.deployments.get(w.deployment_id).status


USE_CASES = [
    UseCase("firmware.import", Permission.FIRMWARE_IMPORT, lambda w: "pump@1.2.0",
            lambda w, api: api.firmware.import_bytes(IMAGE + b"2", version="1.2.0",
                                                     device_type="pump"),
            lambda w: any(f.firmware_id == "pump@1.2.0" for f in w.store.firmware.list())),
    UseCase("firmware.delete", Permission.FIRMWARE_DELETE, lambda w: w.firmware.firmware_id,
            lambda w, api: api.firmware.delete(w.firmware.firmware_id),
            lambda w: w.store.firmware.list() == [], prepare=lambda w: w.firmware),
    UseCase("firmware.key.create", Permission.FIRMWARE_IMPORT, lambda w: "signing-key",
            lambda w, api: api.firmware.create_signing_key(),
            lambda w: w.keys.exists, made=lambda w: w.keys.current_key_id()),
    UseCase("firmware.key.add", Permission.SIGNING_KEYS, lambda w: codesign.key_id(COLLEAGUE),
            lambda w, api: api.firmware.trust_key(codesign.public_pem(COLLEAGUE), "carol"),
            lambda w: [k.owner for k in w.store.trusted_keys.list()] == ["carol"]),
    UseCase("firmware.key.revoke", Permission.SIGNING_KEYS, lambda w: codesign.key_id(COLLEAGUE),
            lambda w, api: api.firmware.revoke_key(codesign.key_id(COLLEAGUE)),
            lambda w: w.store.trusted_keys.list() == [], prepare=_trust_colleague),
    UseCase("deployment.create", Permission.DEPLOYMENT_CREATE, lambda w: w.firmware.firmware_id,
            lambda w, api: api.deployments.create(
                w.firmware.firmware_id, TargetSpec("list", device_ids=("pump-2",)), JobConfig()),
            lambda w: len(w.store.deployments.list()) == 1, prepare=lambda w: w.firmware,
            made=lambda w: w.store.deployments.list()[0].deployment_id),
    UseCase("deployment.pause", Permission.DEPLOYMENT_CONTROL, lambda w: w.deployment_id,
            lambda w, api: api.deployments.pause(w.deployment_id),
            lambda w: _status(w) is DeploymentStatus.PAUSED, prepare=lambda w: w.deployment_id),
    UseCase("deployment.resume", Permission.DEPLOYMENT_CONTROL, lambda w: w.deployment_id,
            lambda w, api: api.deployments.resume(w.deployment_id),
            lambda w: _status(w) is DeploymentStatus.IN_PROGRESS,
            prepare=lambda w: w.store.deployments.set_status(
                w.deployment_id, DeploymentStatus.PAUSED, reason="paused for the test")),
    UseCase("deployment.retry", Permission.DEPLOYMENT_CONTROL, lambda w: w.deployment_id,
            lambda w, api: api.deployments.retry_failed(w.deployment_id),
            lambda w: w.store.deployments.execution(w.deployment_id, "pump-0").status
            is ExecutionStatus.QUEUED, prepare=lambda w: w.deployment_id),
    UseCase("deployment.cancel", Permission.DEPLOYMENT_CANCEL, lambda w: w.deployment_id,
            lambda w, api: api.deployments.cancel(w.deployment_id),
            lambda w: _status(w) is DeploymentStatus.CANCELED, prepare=lambda w: w.deployment_id),
]


@pytest.mark.parametrize("case", USE_CASES, ids=[c.action for c in USE_CASES])
def test_each_use_case_refuses_roles_without_the_grant_and_audits(
        case: UseCase, store: Store, keys: CodeSigningKeys) -> None:  # noqa: F811
    world = World(store, keys)
    case.prepare(world)
    subject = case.subject(world)
    allowed = [r for r in Role if case.permission in GRANTS[r]]
    refused = [r for r in Role if r not in allowed]
    assert refused, f"{case.action}: every role may do it; nothing to refuse"
    for role in refused:
        actor = person(role)
        before = len(store.audit.entries())
        with pytest.raises(PermissionDenied, match=f"may not {case.permission.action}"):
            case.call(world, world.api(actor))
        assert not case.changed(world), f"{role.value} changed the store"
        (entry,) = store.audit.entries()[before:]
        assert (entry.actor, entry.action, entry.subject) == (actor.user, case.action, subject)
        assert entry.details["outcome"] == "denied"
        assert entry.details["permission"] == case.permission.value
        assert entry.details["role"] == role.value and entry.details["organization"] == "acme"
    actor = person(allowed[0])
    case.call(world, world.api(actor))
    assert case.changed(world)
    done = [e for e in store.audit.entries() if e.action == case.action
            and e.actor == actor.user]
    made = case.made(world) if case.made is not None else subject
    assert done and done[-1].subject == made and "outcome" not in done[-1].details
    assert done[-1].details["role"] == allowed[0].value
    assert store.audit.verify() is None


def test_reads_are_open_to_every_role_and_leave_no_trace(store: Store,  # noqa: F811
                                                         keys: CodeSigningKeys) -> None:
    world = World(store, keys)
    deployment_id = world.deployment_id
    before = len(store.audit.entries())
    for role in Role:
        api = world.api(person(role))
        assert [f.firmware_id for f in api.firmware.list()] == ["pump@1.1.0"]
        assert api.firmware.get("pump@1.1.0").sha256 == world.firmware.sha256
        assert api.firmware.verify("pump@1.1.0").ok
        assert api.deployments.status(deployment_id).counts["FAILED"] == 1
        assert [p.deployment_id for p in api.deployments.list()] == [deployment_id]
        plan = api.deployments.plan("pump@1.1.0", TargetSpec("group", device_types=("pump",)))
        assert plan.count == 3
    assert len(store.audit.entries()) == before


def test_another_organizations_devices_and_deployments_are_unknown(
        store: Store, keys: CodeSigningKeys) -> None:  # noqa: F811
    world = World(store, keys)
    acme_deployment = world.deployment_id
    globex = world.api(person(Role.ENGINEER, "globex"))
    acme = world.api(person(Role.ENGINEER, "acme"))

    # Targets: another organization's device is as unknown as a typo, and a group
    # reaches only one's own devices.
    plan = acme.deployments.plan("pump@1.1.0",
                                 TargetSpec("list", device_ids=("pump-0", "pump-g", "nope")))
    assert plan.targets == ("pump-0",)
    assert plan.skipped == {"unknown device": ("pump-g", "nope")}
    group = globex.deployments.plan("pump@1.1.0", TargetSpec("group", device_types=("pump",)))
    assert group.targets == ("pump-g",)
    match = acme.deployments.match(TargetSpec("group", device_types=("pump",)))
    assert (match.count, dict(match.versions["pump"])) == (3, {"1.0.0": 3})
    with pytest.raises(ValidationError, match="no device matches"):
        globex.deployments.create("pump@1.1.0", TargetSpec("list", device_ids=("pump-0",)),
                                  JobConfig())

    # Deployments: another organization's cannot be read, listed or controlled.
    assert globex.deployments.list() == []
    for call in (lambda: globex.deployments.status(acme_deployment),
                 lambda: globex.deployments.executions(acme_deployment),
                 lambda: globex.deployments.pause(acme_deployment),
                 lambda: globex.deployments.cancel(acme_deployment),
                 lambda: globex.deployments.retry_failed(acme_deployment)):
        with pytest.raises(NotFound, match=f"deployment {acme_deployment} does not exist"):
            call()
    assert store.deployments.get(acme_deployment).status is not DeploymentStatus.CANCELED
    own = globex.deployments.create("pump@1.1.0", TargetSpec("group", device_types=("pump",)),
                                    JobConfig())
    assert own.targets == ("pump-g",)
    assert [p.deployment_id for p in acme.deployments.list()] == [acme_deployment]

    # The version distribution counts one's own devices; an image used by another
    # organization's unfinished rollout is still not deleted from under it.
    assert globex.firmware.version_distribution() == {"pump": {"0.9.0": 1}}
    assert acme.firmware.version_distribution() == {"pump": {"1.0.0": 3}}
    acme.deployments.cancel(acme_deployment)
    with pytest.raises(ValidationError, match="cancel the deployment first"):
        acme.firmware.delete("pump@1.1.0")


def test_a_team_session_signs_only_with_a_key_the_team_trusts(
        store: Store, keys: CodeSigningKeys) -> None:  # noqa: F811
    world = World(store, keys)
    engineer = fleet_api(store, keys, person(Role.ENGINEER), team=True)
    admin = fleet_api(store, keys, person(Role.ADMIN), team=True)
    with pytest.raises(ValidationError, match="no code-signing key here"):
        engineer.firmware.import_bytes(IMAGE, version="1.1.0", device_type="pump")
    assert not keys.exists, "an import never creates a key"
    key = engineer.firmware.create_signing_key()
    with pytest.raises(ValidationError, match=f"{key.key_id} is not in the team's trusted"):
        engineer.firmware.import_bytes(IMAGE, version="1.1.0", device_type="pump")
    # An image from elsewhere (the one-process library) cannot be deployed either.
    fw = world.firmware
    with pytest.raises(ValidationError, match="devices would refuse this deployment"):
        engineer.deployments.create(fw.firmware_id, TargetSpec("list", device_ids=("pump-0",)),
                                    JobConfig())
    assert store.deployments.list() == []
    admin.firmware.trust_key(key.public_pem, "erin")
    assert engineer.firmware.verify(fw.firmware_id).message.startswith(
        f"signature verified (key {key.key_id} of erin, trusted by the team")
    made = engineer.deployments.create(fw.firmware_id,
                                       TargetSpec("list", device_ids=("pump-0",)), JobConfig())
    assert made.targets == ("pump-0",)
    admin.firmware.revoke_key(key.key_id)
    report = engineer.firmware.verify(fw.firmware_id)
    assert not report.ok and "revoked by admin-1" in report.message
