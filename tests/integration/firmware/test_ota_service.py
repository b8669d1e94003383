"""The OTA service: target plans, job documents, role checks and audit."""

from __future__ import annotations

import hashlib

import pytest

from core.crypto import codesign
from core.crypto.keystore import CodeSigningKeys
from core.errors import PermissionDenied, ValidationError
from core.model import DeploymentStatus, ExecutionStatus, Firmware, SemVer
from core.model.roles import Actor, Role
from core.model.rollout import AbortCriterion, FailureType, JobConfig, RolloutConfig
from core.ports.fleet_api import DeploymentsApi, FirmwareApi
from core.ports.fleet_api.deployments import TargetSpec
from core.protocol.ota import DEFAULT_MANIFEST_VALIDITY_S, OtaJobDocument, placeholder_target
from core.store import Store
from tests.integration.firmware.sessions import fleet_api

CONFIG = JobConfig(RolloutConfig(maximum_per_minute=50),
                   abort=(AbortCriterion(FailureType.FAILED, 10, 20),))


def _service(store: Store, role: Role = Role.ENGINEER,
             keys: CodeSigningKeys | None = None) -> DeploymentsApi:
    return fleet_api(store, keys or _KEYS[0], Actor("erin", role)).deployments


_KEYS: list[CodeSigningKeys] = []


@pytest.fixture(autouse=True)
def _signing_keys(keys: CodeSigningKeys) -> None:
    _KEYS[:] = [keys]


@pytest.fixture
def firmware(library: FirmwareApi) -> Firmware:
    return library.import_bytes(b"pump image" * 500, version="1.1.0", device_type="pump")


def test_plans_resolve_lists_groups_and_filters(store: Store, firmware: Firmware) -> None:
    svc = _service(store)
    group = svc.plan(firmware.firmware_id, TargetSpec("group", device_types=("pump",)))
    assert group.count == 10
    online = svc.plan(firmware.firmware_id,
                      TargetSpec("group", device_types=("pump",), statuses=("online",)))
    assert online.count == 5
    tagged = svc.plan(firmware.firmware_id, TargetSpec("group", tag="north"))
    assert tagged.targets == tuple(f"pump-{i:03d}" for i in range(5))
    mixed = svc.plan(firmware.firmware_id,
                     TargetSpec("list", device_ids=("pump-001", "env-000", "ghost")))
    assert mixed.targets == ("pump-001",)
    assert mixed.skipped == {"unknown device": ("ghost",), "not a pump": ("env-000",)}
    text = svc.plan(firmware.firmware_id, TargetSpec("filter", text="pump-00"))
    assert text.count == 10


def test_create_persists_a_signed_document_with_a_presigned_placeholder(
    store: Store, firmware: Firmware, keys
) -> None:
    d = _service(store).create(firmware.firmware_id, TargetSpec("group", tag="north"), CONFIG,
                               description="spring")
    stored = store.deployments.get(d.deployment_id)
    assert stored.status is DeploymentStatus.SCHEDULED and stored.created_by == "erin"
    assert stored.config == CONFIG and stored.target_spec["tag"] == "north"
    doc = OtaJobDocument.parse(stored.document)
    assert placeholder_target(doc.url) == f"firmware/{firmware.firmware_id}"
    assert (doc.version, doc.sha256, doc.size) == (SemVer.parse("1.1.0"), firmware.sha256,
                                                  firmware.size)
    image = store.firmware.read_image("pump", firmware.version)
    public = codesign.load_public_pem(keys.public_pem())
    assert doc.key_id == codesign.key_id(public)
    assert codesign.verify(public, image, doc.signature)
    # The manifest vouches for type, version, size, SHA-256, downgrade rule and expiry.
    assert doc.manifest is not None and doc.manifest.key_id == codesign.key_id(public)
    assert codesign.verify(public, doc.manifest.payload, doc.manifest.signature)
    manifest = doc.manifest.manifest()
    assert (manifest.device_type, manifest.version, manifest.size, manifest.sha256,
            manifest.allow_downgrade) == ("pump", SemVer.parse("1.1.0"), firmware.size,
                                          firmware.sha256, False)
    assert manifest.expires - manifest.issued_at == DEFAULT_MANIFEST_VALIDITY_S
    entry = store.audit.entries()[-1]
    assert (entry.actor, entry.action, entry.subject) == ("erin", "deployment.create",
                                                          d.deployment_id)


def test_unsigned_firmware_and_empty_targets_are_refused(store: Store, firmware: Firmware
                                                         ) -> None:
    raw = b"unsigned"
    store.firmware.add(Firmware(SemVer.parse("9.0.0"), "pump", len(raw),
                                hashlib.sha256(raw).hexdigest()), raw)
    with pytest.raises(ValidationError, match="not signed"):
        _service(store).create("pump@9.0.0", TargetSpec("group", device_types=("pump",)),
                               CONFIG)
    with pytest.raises(ValidationError, match=r"no device matches.*1 not a pump"):
        _service(store).create(firmware.firmware_id, TargetSpec("list", device_ids=("env-000",)),
                               CONFIG)
    assert store.deployments.list() == []


@pytest.mark.parametrize("role", [Role.TECHNICIAN, Role.SUPPORT])
def test_only_engineers_create_cancel_and_control(store: Store, firmware: Firmware,
                                                 role: Role) -> None:
    spec = TargetSpec("group", device_types=("pump",))
    with pytest.raises(PermissionDenied, match="create deployments"):
        _service(store, role).create(firmware.firmware_id, spec, CONFIG)
    assert store.deployments.list() == []
    d = _service(store, Role.ENGINEER).create(firmware.firmware_id, spec, CONFIG)
    outsider = _service(store, role)
    with pytest.raises(PermissionDenied, match="cancel deployments"):
        outsider.cancel(d.deployment_id)
    for action in (outsider.pause, outsider.resume, outsider.retry_failed):
        with pytest.raises(PermissionDenied):
            action(d.deployment_id)
    assert store.deployments.get(d.deployment_id).status is DeploymentStatus.SCHEDULED
    assert _service(store, Role.ADMIN).cancel(d.deployment_id).status is (
        DeploymentStatus.CANCELED)


def test_pause_resume_retry_and_cancel(store: Store, firmware: Firmware,
                                       library: FirmwareApi) -> None:
    svc = _service(store)
    d = svc.create(firmware.firmware_id, TargetSpec("group", tag="north"), CONFIG)
    store.deployments.release(d.deployment_id, d.targets)
    store.deployments.update_execution(d.deployment_id, "pump-000", ExecutionStatus.FAILED)
    store.deployments.update_execution(d.deployment_id, "pump-001", ExecutionStatus.REJECTED)
    assert svc.pause(d.deployment_id).status is DeploymentStatus.PAUSED
    assert svc.resume(d.deployment_id).status is DeploymentStatus.IN_PROGRESS
    assert svc.retry_failed(d.deployment_id) == ["pump-000"], "rejections are not retried"
    with pytest.raises(ValidationError, match="cancel the deployment first"):
        library.delete(firmware.firmware_id)
    canceled = svc.cancel(d.deployment_id, force=True)
    assert canceled.reason == "canceled by erin (forced)"
    library.delete(firmware.firmware_id)
    actions = [e.action for e in store.audit.entries()]
    for expected in ("deployment.pause", "deployment.resume", "deployment.retry",
                     "deployment.cancel", "firmware.delete"):
        assert expected in actions


def test_a_deployment_without_a_signing_key_is_refused(store: Store, firmware: Firmware) -> None:
    unsigned = fleet_api(store, None, Actor("erin", Role.ENGINEER)).deployments
    with pytest.raises(ValidationError, match="sign their manifest"):
        unsigned.create(firmware.firmware_id, TargetSpec("group", tag="north"), CONFIG)
    assert store.deployments.list() == []
