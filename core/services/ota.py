"""What people can do with deployments, with permissions checked here.

The GUI wizard, the monitor, ``smartiot deploy`` and the REST API all call
:class:`OtaService` with the person acting, so the rule "only engineers
create or cancel rollouts" holds no matter which button or command is used.
Every change is persisted (and audited, refusals too) before it is reported
back as done.

Organization scope: a person in an organization plans and deploys only to
that organization's devices (others are "unknown device", so ids cannot be
probed) and sees only deployments that target them.
"""

from __future__ import annotations

import builtins
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from core.crypto import codesign
from core.errors import NotFound, ValidationError
from core.model import (
    Deployment,
    DeploymentStatus,
    Device,
    Execution,
    ExecutionStatus,
    Firmware,
)
from core.model.roles import Actor, Permission
from core.model.rollout import JobConfig
from core.ports.deployments import DeploymentService
from core.ports.firmware import FirmwareRepository
from core.ports.fleet_api.deployments import (
    DeploymentProgress,
    TargetMatch,
    TargetPlan,
    TargetSpec,
)
from core.ports.hub import AuditTrail
from core.ports.registry import DeviceQuery, DeviceRegistry
from core.protocol.ota import (
    DEFAULT_MANIFEST_VALIDITY_S,
    DEFAULT_SELFTEST_WINDOW_S,
    ManifestSigner,
    OtaJobDocument,
    OtaManifest,
    SignedManifest,
    presigned_placeholder,
    sign_manifest,
)
from core.services.access import authorize, record_action
from core.services.fleet_view import Page, _limit, decode_token, encode_token
from core.services.signing_keys import TeamSigner

if TYPE_CHECKING:
    from core.services.wiring import Services

__all__ = ["DeploymentProgress", "DeploymentsSession", "OtaService", "TargetPlan", "TargetSpec",
           "record_action"]

# A rejection is the device's verdict on the image; only explicit requests retry it.
_RETRIABLE = (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT)
# How far a manifest signed on a person's machine may claim to be issued in the
# future (clocks differ a little; a manifest from tomorrow is a mistake).
CLOCK_SKEW_S = 300
MAX_MANIFEST_VALIDITY_S = 366 * 86400

Trusted = Callable[[], Mapping[str, codesign.PublicKey]]


class OtaService:
    def __init__(
        self,
        deployments: DeploymentService | None,
        firmware: FirmwareRepository | None,
        registry: DeviceRegistry,
        *,
        audit: AuditTrail | None = None,
        signer: ManifestSigner | None = None,
        trusted: Trusted | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``trusted``: the code-signing keys images and manifests may be signed
        with here (the team's list), for deployments whose manifest was signed
        on the engineer's own machine (the AWS backend holds no private key)."""
        self._deployments = deployments
        self._firmware = firmware
        self._registry = registry
        self._audit = audit
        # Signs each deployment's manifest: devices act only on what it vouches for.
        self._signer = signer
        self._trusted = trusted
        self._clock = clock

    # ------------------------------------------------------------ parts and scope
    def _store(self) -> DeploymentService:
        if self._deployments is None:
            raise NotFound("this backend cannot run OTA deployments")
        return self._deployments

    def _library(self) -> FirmwareRepository:
        if self._firmware is None:
            raise NotFound("this backend has no firmware library")
        return self._firmware

    @staticmethod
    def _in_scope(actor: Actor, device: Device) -> bool:
        return not actor.organization or device.organization == actor.organization

    def _org_device_ids(self, actor: Actor) -> set[str] | None:
        """The ids of the actor's organization's devices (None: no limit)."""
        if not actor.organization:
            return None
        return {d.device_id for d in self._registry.list(
            DeviceQuery(organizations=frozenset({actor.organization})))}

    def _visible(self, actor: Actor, deployment_id: str) -> Deployment:
        """The deployment, or NotFound when it targets none of the actor's devices
        (so another organization's deployment ids cannot be probed)."""
        deployment = self._store().get(deployment_id)
        ids = self._org_device_ids(actor)
        if ids is not None and not ids.intersection(deployment.targets):
            raise NotFound(f"deployment {deployment_id} does not exist")
        return deployment

    # ------------------------------------------------------------ planning
    def _resolve(self, actor: Actor, spec: TargetSpec
                 ) -> tuple[builtins.list[Device], tuple[str, ...]]:
        """The actor's devices ``spec`` names, and listed ids that are not (or not
        the actor's: another organization's device is as unknown as a typo)."""
        if spec.kind == "list":
            found = {d.device_id: d for d in (self._registry.find(i) for i in spec.device_ids)
                     if d is not None and self._in_scope(actor, d)}
            unknown = tuple(i for i in spec.device_ids if i not in found)
            return [found[i] for i in spec.device_ids if i in found], unknown
        query = spec.query()
        if actor.organization:
            query = replace(query, organizations=frozenset({actor.organization}))
        return self._registry.list(query), ()

    def match(self, actor: Actor, spec: TargetSpec) -> TargetMatch:
        """Count what a target choice finds, by type and running version."""
        devices, unknown = self._resolve(actor, spec)
        found = TargetMatch(len(devices), unknown)
        for d in devices:
            found.types[d.device_type] += 1
            found.versions.setdefault(d.device_type, Counter())[
                d.firmware_version or "unknown"] += 1
        return found

    def plan(self, actor: Actor, firmware_id: str, spec: TargetSpec, *,
             only_matching_type: bool = True) -> TargetPlan:
        """Resolve the targets now (dry run: how many, who is left out and why).
        Devices of another type are left out by default: they would reject the
        image anyway."""
        firmware = self._library().get_by_id(firmware_id)
        devices, unknown = self._resolve(actor, spec)
        skipped: dict[str, tuple[str, ...]] = {}
        if unknown:
            skipped["unknown device"] = unknown
        if only_matching_type:
            other = tuple(d.device_id for d in devices if d.device_type != firmware.device_type)
            if other:
                skipped[f"not a {firmware.device_type}"] = other
            devices = [d for d in devices if d.device_type == firmware.device_type]
        return TargetPlan(tuple(d.device_id for d in devices), skipped)

    # ------------------------------------------------------------ reading
    def status(self, actor: Actor, deployment_id: str) -> DeploymentProgress:
        deployment = self._visible(actor, deployment_id)
        store = self._store()
        return DeploymentProgress(deployment, store.counts(deployment_id), store.can_pause)

    def executions(self, actor: Actor, deployment_id: str) -> builtins.list[Execution]:
        """Where each target is (one execution per device, newest attempt)."""
        self._visible(actor, deployment_id)
        return self._store().executions(deployment_id)

    def list(self, actor: Actor) -> builtins.list[DeploymentProgress]:
        """Every deployment the actor may see, newest first, with its counts."""
        return self._with_counts(self._visible_deployments(actor))

    def _visible_deployments(self, actor: Actor) -> builtins.list[Deployment]:
        found = self._store().list()
        ids = self._org_device_ids(actor)
        if ids is not None:
            found = [d for d in found if ids.intersection(d.targets)]
        return found

    def _with_counts(self, found: builtins.list[Deployment]) -> builtins.list[DeploymentProgress]:
        store = self._store()
        return [DeploymentProgress(d, store.counts(d.deployment_id), store.can_pause)
                for d in found]

    def page(self, actor: Actor, *, limit: int | None = None, next_token: str = ""
             ) -> Page[DeploymentProgress]:
        size = _limit(limit)
        offset = decode_token(next_token)
        rows = self._visible_deployments(actor)
        more = len(rows) > offset + size
        # counted for this page only (on AWS a count can be a ListJobExecutions walk)
        return Page(self._with_counts(rows[offset:offset + size]),
                    encode_token(offset + size) if more else "")

    # ------------------------------------------------------------ changes
    def create(
        self,
        actor: Actor,
        firmware_id: str,
        spec: TargetSpec,
        config: JobConfig | Mapping[str, Any],
        *,
        description: str = "",
        allow_downgrade: bool = False,
        only_matching_type: bool = True,
        selftest_window_s: float = DEFAULT_SELFTEST_WINDOW_S,
        manifest_validity_s: int = DEFAULT_MANIFEST_VALIDITY_S,
        manifest: SignedManifest | Mapping[str, Any] | None = None,
        refuse_unknown: bool = False,
    ) -> Deployment:
        """``config`` may be CreateJob's JSON (parsed here, after the role check,
        so a caller without the role learns nothing from a bad one).
        ``manifest``: signed on the engineer's machine; it must be signed by a
        trusted key and describe exactly this image and downgrade rule, and the
        stored image must still match it (otherwise this backend signs one with
        its own key). ``refuse_unknown``: a listed device the actor cannot see is
        an error (an API client named it on purpose) instead of being left out."""
        authorize(self._audit, actor, Permission.DEPLOYMENT_CREATE, "deployment.create",
                  firmware_id)
        job_config = config if isinstance(config, JobConfig) else JobConfig.from_aws(
            dict(config))
        if manifest is not None and not isinstance(manifest, SignedManifest):
            manifest = SignedManifest.parse(dict(manifest))
        store = self._store()
        firmware = self._library().get_by_id(firmware_id)
        plan = self.plan(actor, firmware_id, spec, only_matching_type=only_matching_type)
        unknown = plan.skipped.get("unknown device")
        if refuse_unknown and spec.kind == "list" and unknown:
            raise NotFound(f"device {unknown[0]} is not registered")
        if not plan.targets:
            left_out = "; ".join(f"{len(v)} {k}" for k, v in plan.skipped.items())
            raise ValidationError(
                f"no device matches {spec.describe()} for {firmware_id}"
                + (f" ({left_out})" if left_out else "")
            )
        if manifest is None:
            document = self.document_for(actor, firmware, allow_downgrade=allow_downgrade,
                                         selftest_window_s=selftest_window_s,
                                         manifest_validity_s=manifest_validity_s)
        else:
            document = self.document_with(firmware, manifest, allow_downgrade=allow_downgrade,
                                          selftest_window_s=selftest_window_s)
        deployment = store.create(
            Deployment(
                firmware_id=firmware.firmware_id,
                targets=plan.targets,
                created_by=actor.user,
                config=job_config,
                document=document,
                target_spec=spec.to_json(),
                description=description,
            )
        )
        record_action(self._audit, actor, "deployment.create", deployment.deployment_id,
                      {"firmware": firmware_id, "targets": len(plan.targets),
                       "config": job_config.to_aws(),
                       **({} if manifest is None else {"manifest_signed_by": manifest.key_id})})
        return deployment

    def document_with(self, firmware: Firmware, signed: SignedManifest, *,
                      allow_downgrade: bool = False,
                      selftest_window_s: float = DEFAULT_SELFTEST_WINDOW_S) -> dict[str, Any]:
        """The job document around a manifest signed elsewhere, once it is
        proven: signed by a key the team trusts, describing exactly this image
        (type, version, size, SHA-256, the key that signed the image) and
        downgrade rule, valid now, and the stored image still hashing to it with
        its own signature by a trusted key. Every refusal names what differs."""
        trusted = dict(self._trusted()) if self._trusted is not None else {}
        where = f"the manifest for {firmware.firmware_id}"
        key = trusted.get(signed.key_id)
        if key is None:
            known = ", ".join(sorted(trusted)) or "none yet"
            raise ValidationError(
                f"{where} is signed by key {signed.key_id}, which is not in the team's trusted "
                f"keys ({known}); ask an admin to add it (`smartiot firmware keys add FILE "
                "--owner NAME`)")
        if not codesign.verify(key, signed.payload, signed.signature):
            raise ValidationError(f"{where}: the signature does not verify with key "
                                  f"{signed.key_id}; nothing was deployed")
        m = signed.manifest()
        expected = {"device type": (m.device_type, firmware.device_type),
                    "version": (str(m.version), str(firmware.version)),
                    "size": (m.size, firmware.size), "sha256": (m.sha256, firmware.sha256),
                    "image key": (m.bound_image_key_id, firmware.key_id),
                    "allowDowngrade": (m.allow_downgrade, allow_downgrade),
                    "key id": (m.key_id, signed.key_id)}
        for name, (said, wanted) in expected.items():
            if said != wanted:
                raise ValidationError(f"{where} says {name} {said!r} but the deployment is "
                                      f"for {wanted!r}; sign a manifest for this deployment")
        now = int(self._clock())
        if m.issued_at > now + CLOCK_SKEW_S:
            raise ValidationError(f"{where} is issued in the future ({m.issued_at}, now {now}); "
                                  "check the signing machine's clock")
        if m.expires <= now + 60:
            raise ValidationError(f"{where} expired (or expires within a minute) at "
                                  f"{m.expires}; sign a new one")
        if m.expires - m.issued_at > MAX_MANIFEST_VALIDITY_S:
            raise ValidationError(f"{where} is valid for more than a year; sign a shorter one")
        self._check_image(firmware, trusted)
        return OtaJobDocument.for_firmware(
            firmware, key_id=firmware.key_id,
            url=presigned_placeholder(f"firmware/{firmware.firmware_id}"),
            allow_downgrade=allow_downgrade, selftest_window_s=selftest_window_s,
            manifest=signed).to_json()

    def _check_image(self, firmware: Firmware, trusted: Mapping[str, codesign.PublicKey]
                     ) -> None:
        """The stored bytes, re-read: their SHA-256 and their own signature."""
        image = self._library().read_image(firmware.device_type, firmware.version)
        if len(image) != firmware.size or hashlib.sha256(image).hexdigest() != firmware.sha256:
            raise ValidationError(f"firmware {firmware.firmware_id}: the stored image no longer "
                                  "matches its SHA-256; nothing was deployed")
        key = trusted.get(firmware.key_id)
        if key is None or not codesign.verify(key, image, firmware.signature or b""):
            raise ValidationError(f"firmware {firmware.firmware_id}: the image's signature (key "
                                  f"{firmware.key_id}) is not by a trusted key or does not "
                                  "verify; nothing was deployed")

    def document_for(self, actor: Actor, firmware: Firmware, *, allow_downgrade: bool = False,
                     selftest_window_s: float = DEFAULT_SELFTEST_WINDOW_S,
                     manifest_validity_s: int = DEFAULT_MANIFEST_VALIDITY_S) -> dict[str, Any]:
        """The job document with its signed manifest (type, version, size, SHA-256,
        downgrade rule, key id, expiry): the only part a device trusts."""
        signer = self._signer
        if signer is None:
            raise ValidationError(
                "deployments need the code-signing key to sign their manifest, and none is "
                "configured here: sign the manifest with your own trusted key and send it "
                "with the request (the console does this on AWS)"
            )
        if isinstance(signer, TeamSigner):
            signer = signer.for_user(actor.user)
        if not 60 <= manifest_validity_s <= 366 * 86400:
            raise ValidationError(
                f"manifest validity {manifest_validity_s} s must be between 60 s and a year")
        doc = OtaJobDocument.for_firmware(
            firmware,
            key_id=firmware.key_id,
            url=presigned_placeholder(f"firmware/{firmware.firmware_id}"),
            allow_downgrade=allow_downgrade,
            selftest_window_s=selftest_window_s,
        )
        manifest = doc.manifest_for(key_id=signer.current_key_id(),
                                    issued_at=int(self._clock()),
                                    validity_s=manifest_validity_s)
        signed = sign_manifest(manifest, signer.sign)
        return OtaJobDocument.for_firmware(
            firmware, key_id=firmware.key_id, url=doc.url, allow_downgrade=allow_downgrade,
            selftest_window_s=selftest_window_s, manifest=signed,
        ).to_json()

    def cancel(self, actor: Actor, deployment_id: str, *, force: bool = False) -> Deployment:
        authorize(self._audit, actor, Permission.DEPLOYMENT_CANCEL, "deployment.cancel",
                  deployment_id)
        self._visible(actor, deployment_id)
        reason = f"canceled by {actor.user}" + (" (forced)" if force else "")
        result = self._store().cancel(deployment_id, force=force, reason=reason)
        record_action(self._audit, actor, "deployment.cancel", deployment_id, {"force": force})
        return result

    def pause(self, actor: Actor, deployment_id: str) -> Deployment:
        authorize(self._audit, actor, Permission.DEPLOYMENT_CONTROL, "deployment.pause",
                  deployment_id)
        self._visible(actor, deployment_id)
        result = self._store().set_status(
            deployment_id, DeploymentStatus.PAUSED, reason=f"paused by {actor.user}"
        )
        record_action(self._audit, actor, "deployment.pause", deployment_id)
        return result

    def resume(self, actor: Actor, deployment_id: str) -> Deployment:
        authorize(self._audit, actor, Permission.DEPLOYMENT_CONTROL, "deployment.resume",
                  deployment_id)
        self._visible(actor, deployment_id)
        result = self._store().set_status(deployment_id, DeploymentStatus.IN_PROGRESS)
        record_action(self._audit, actor, "deployment.resume", deployment_id)
        return result

    def retry_failed(self, actor: Actor, deployment_id: str,
                     statuses: Sequence[ExecutionStatus] = _RETRIABLE) -> builtins.list[str]:
        """Queue a new attempt for devices that failed; the rollout engine
        announces them to the devices on its next tick."""
        authorize(self._audit, actor, Permission.DEPLOYMENT_CONTROL, "deployment.retry",
                  deployment_id)
        self._visible(actor, deployment_id)
        store = self._store()
        failed = [e.device_id for e in store.executions(deployment_id) if e.status in statuses]
        if not failed:
            raise NotFound(f"deployment {deployment_id} has no failed devices to retry")
        requeued = store.requeue(deployment_id, failed)
        record_action(self._audit, actor, "deployment.retry", deployment_id,
                      {"devices": len(requeued)})
        return [e.device_id for e in requeued]


def manifest_bytes(firmware: Firmware, *, key_id: str, issued_at: int,
                   allow_downgrade: bool = False,
                   manifest_validity_s: int = DEFAULT_MANIFEST_VALIDITY_S) -> bytes:
    """The canonical manifest for a deployment of ``firmware`` signed with
    ``key_id``: what a console signs on the engineer's machine."""
    if not 60 <= manifest_validity_s <= MAX_MANIFEST_VALIDITY_S:
        raise ValidationError(
            f"manifest validity {manifest_validity_s} s must be between 60 s and a year")
    # as OtaJobDocument.manifest_for builds it; the image's own signature is not
    # needed here (the REST API does not hand it out), only the key that made it
    return OtaManifest(firmware.device_type, firmware.version, firmware.size, firmware.sha256,
                       key_id, issued_at, issued_at + manifest_validity_s, allow_downgrade,
                       None, image_key_id=firmware.key_id).canonical()


class DeploymentsSession:
    """The deployment use cases for one person (core.ports.fleet_api.DeploymentsApi)."""

    def __init__(self, services: Services, actor: Actor) -> None:
        self._service = services.deployments
        self._actor = actor

    def match(self, spec: TargetSpec) -> TargetMatch:
        return self._service.match(self._actor, spec)

    def plan(self, firmware_id: str, spec: TargetSpec, *, only_matching_type: bool = True
             ) -> TargetPlan:
        return self._service.plan(self._actor, firmware_id, spec,
                                  only_matching_type=only_matching_type)

    def create(self, firmware_id: str, spec: TargetSpec, config: JobConfig, *,
               description: str = "", allow_downgrade: bool = False,
               only_matching_type: bool = True,
               selftest_window_s: float = DEFAULT_SELFTEST_WINDOW_S,
               manifest_validity_s: int = DEFAULT_MANIFEST_VALIDITY_S,
               manifest: SignedManifest | None = None) -> Deployment:
        return self._service.create(
            self._actor, firmware_id, spec, config, description=description,
            allow_downgrade=allow_downgrade, only_matching_type=only_matching_type,
            selftest_window_s=selftest_window_s, manifest_validity_s=manifest_validity_s,
            manifest=manifest)

    def status(self, deployment_id: str) -> DeploymentProgress:
        return self._service.status(self._actor, deployment_id)

    def executions(self, deployment_id: str) -> builtins.list[Execution]:
        return self._service.executions(self._actor, deployment_id)

    def list(self) -> builtins.list[DeploymentProgress]:
        return self._service.list(self._actor)

    def page(self, *, limit: int | None = None, next_token: str = ""
             ) -> Page[DeploymentProgress]:
        return self._service.page(self._actor, limit=limit, next_token=next_token)

    def pause(self, deployment_id: str) -> Deployment:
        return self._service.pause(self._actor, deployment_id)

    def resume(self, deployment_id: str) -> Deployment:
        return self._service.resume(self._actor, deployment_id)

    def cancel(self, deployment_id: str, *, force: bool = False) -> Deployment:
        return self._service.cancel(self._actor, deployment_id, force=force)

    def retry_failed(self, deployment_id: str) -> builtins.list[str]:
        return self._service.retry_failed(self._actor, deployment_id)
