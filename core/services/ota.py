"""What an engineer can do with deployments, with permissions checked here.

The GUI wizard, the monitor and ``smartiot deploy`` all go through this
service, so the rule "only engineers create or cancel rollouts" holds no
matter which button or command is used. Every change is persisted (and
audited) before it is reported back as done.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import NotFound, ValidationError
from core.model import Deployment, DeploymentStatus, DeviceStatus, ExecutionStatus, Firmware
from core.model.roles import Actor, Permission
from core.model.rollout import JobConfig
from core.ports.deployments import DeploymentService
from core.ports.firmware import FirmwareRepository
from core.ports.hub import AuditTrail
from core.ports.registry import DeviceQuery, DeviceRegistry
from core.protocol.ota import (
    DEFAULT_MANIFEST_VALIDITY_S,
    DEFAULT_SELFTEST_WINDOW_S,
    ManifestSigner,
    OtaJobDocument,
    presigned_placeholder,
    sign_manifest,
)
from core.services.access import authorize, record_action

__all__ = ["OtaService", "TargetPlan", "TargetSpec", "record_action"]

# A rejection is the device's verdict on the image; only explicit requests retry it.
_RETRIABLE = (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT)


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """Which devices a deployment is for: an explicit list, a group (device
    type and/or tag) or a filter (the Devices page's query). Kept on the
    deployment so people can later see how its targets were chosen."""

    kind: str = "list"
    device_ids: tuple[str, ...] = ()
    device_types: tuple[str, ...] = ()
    tag: str = ""
    text: str = ""
    statuses: tuple[str, ...] = ()
    firmware_version: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("list", "group", "filter"):
            raise ValidationError(f"target kind {self.kind!r} is not one of list, group, filter")
        if self.kind == "list" and not self.device_ids:
            raise ValidationError("a target list needs at least one device id")
        if self.kind == "group" and not (self.device_types or self.tag):
            raise ValidationError("a target group needs a device type or a tag")
        for status in self.statuses:
            DeviceStatus(status)

    def query(self) -> DeviceQuery:
        return DeviceQuery(
            text=self.text,
            statuses=frozenset(DeviceStatus(s) for s in self.statuses),
            device_types=frozenset(self.device_types),
            tag=self.tag,
            firmware_version=self.firmware_version,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "device_ids": list(self.device_ids),
            "device_types": list(self.device_types),
            "tag": self.tag,
            "text": self.text,
            "statuses": list(self.statuses),
            "firmware_version": self.firmware_version,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TargetSpec:
        return cls(
            kind=str(data.get("kind", "list")),
            device_ids=tuple(data.get("device_ids", ())),
            device_types=tuple(data.get("device_types", ())),
            tag=str(data.get("tag", "")),
            text=str(data.get("text", "")),
            statuses=tuple(data.get("statuses", ())),
            firmware_version=str(data.get("firmware_version", "")),
        )

    def describe(self) -> str:
        if self.kind == "list":
            shown = ", ".join(self.device_ids[:3])
            more = f" and {len(self.device_ids) - 3} more" if len(self.device_ids) > 3 else ""
            return f"devices {shown}{more}"
        parts = []
        if self.device_types:
            parts.append("type " + "/".join(self.device_types))
        if self.tag:
            parts.append(f"tag {self.tag}")
        if self.text:
            parts.append(f"matching {self.text!r}")
        if self.statuses:
            parts.append("status " + "/".join(self.statuses))
        if self.firmware_version:
            parts.append(f"on firmware {self.firmware_version}")
        return ", ".join(parts) or "all devices"


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """The dry run: who would get the image, and who is left out and why."""

    targets: tuple[str, ...]
    skipped: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.targets)


class OtaService:
    def __init__(
        self,
        deployments: DeploymentService,
        firmware: FirmwareRepository,
        registry: DeviceRegistry,
        actor: Actor,
        *,
        audit: AuditTrail | None = None,
        signer: ManifestSigner | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._deployments = deployments
        self._firmware = firmware
        self._registry = registry
        self.actor = actor
        self._audit = audit
        # Signs each deployment's manifest: devices act only on what it vouches for.
        self._signer = signer
        self._clock = clock

    # ------------------------------------------------------------ planning
    def plan(self, firmware_id: str, spec: TargetSpec, *, only_matching_type: bool = True
             ) -> TargetPlan:
        """Resolve the targets now (dry-run count). Devices of another type are
        left out by default: they would reject the image anyway."""
        firmware = self._firmware.get_by_id(firmware_id)
        if spec.kind == "list":
            found = {d.device_id: d for d in (self._registry.find(i) for i in spec.device_ids)
                     if d is not None}
            unknown = tuple(i for i in spec.device_ids if i not in found)
            devices = [found[i] for i in spec.device_ids if i in found]
        else:
            devices = self._registry.list(spec.query())
            unknown = ()
        skipped: dict[str, tuple[str, ...]] = {}
        if unknown:
            skipped["unknown device"] = unknown
        if only_matching_type:
            other = tuple(d.device_id for d in devices if d.device_type != firmware.device_type)
            if other:
                skipped[f"not a {firmware.device_type}"] = other
            devices = [d for d in devices if d.device_type == firmware.device_type]
        return TargetPlan(tuple(d.device_id for d in devices), skipped)

    # ------------------------------------------------------------ changes
    def create(
        self,
        firmware_id: str,
        spec: TargetSpec,
        config: JobConfig,
        *,
        description: str = "",
        allow_downgrade: bool = False,
        only_matching_type: bool = True,
        selftest_window_s: float = DEFAULT_SELFTEST_WINDOW_S,
        manifest_validity_s: int = DEFAULT_MANIFEST_VALIDITY_S,
    ) -> Deployment:
        authorize(self._audit, self.actor, Permission.DEPLOYMENT_CREATE, "deployment.create",
                  firmware_id)
        firmware = self._firmware.get_by_id(firmware_id)
        plan = self.plan(firmware_id, spec, only_matching_type=only_matching_type)
        if not plan.targets:
            left_out = "; ".join(f"{len(v)} {k}" for k, v in plan.skipped.items())
            raise ValidationError(
                f"no device matches {spec.describe()} for {firmware_id}"
                + (f" ({left_out})" if left_out else "")
            )
        document = self.document_for(firmware, allow_downgrade=allow_downgrade,
                                     selftest_window_s=selftest_window_s,
                                     manifest_validity_s=manifest_validity_s)
        deployment = self._deployments.create(
            Deployment(
                firmware_id=firmware.firmware_id,
                targets=plan.targets,
                created_by=self.actor.user,
                config=config,
                document=document,
                target_spec=spec.to_json(),
                description=description,
            )
        )
        self._record("deployment.create", deployment.deployment_id,
                     {"firmware": firmware_id, "targets": len(plan.targets),
                      "config": config.to_aws()})
        return deployment

    def document_for(self, firmware: Firmware, *, allow_downgrade: bool = False,
                     selftest_window_s: float = DEFAULT_SELFTEST_WINDOW_S,
                     manifest_validity_s: int = DEFAULT_MANIFEST_VALIDITY_S) -> dict[str, Any]:
        """The job document with its signed manifest (type, version, size, SHA-256,
        downgrade rule, key id, expiry): the only part a device trusts."""
        if self._signer is None:
            raise ValidationError(
                "deployments need the code-signing key to sign their manifest, and none is "
                "configured here"
            )
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
        manifest = doc.manifest_for(key_id=self._signer.current_key_id(),
                                    issued_at=int(self._clock()),
                                    validity_s=manifest_validity_s)
        signed = sign_manifest(manifest, self._signer.sign)
        return OtaJobDocument.for_firmware(
            firmware, key_id=firmware.key_id, url=doc.url, allow_downgrade=allow_downgrade,
            selftest_window_s=selftest_window_s, manifest=signed,
        ).to_json()

    def cancel(self, deployment_id: str, *, force: bool = False) -> Deployment:
        authorize(self._audit, self.actor, Permission.DEPLOYMENT_CANCEL, "deployment.cancel",
                  deployment_id)
        reason = f"canceled by {self.actor.user}" + (" (forced)" if force else "")
        result = self._deployments.cancel(deployment_id, force=force, reason=reason)
        self._record("deployment.cancel", deployment_id, {"force": force})
        return result

    def pause(self, deployment_id: str) -> Deployment:
        authorize(self._audit, self.actor, Permission.DEPLOYMENT_CONTROL, "deployment.pause",
                  deployment_id)
        result = self._deployments.set_status(
            deployment_id, DeploymentStatus.PAUSED, reason=f"paused by {self.actor.user}"
        )
        self._record("deployment.pause", deployment_id)
        return result

    def resume(self, deployment_id: str) -> Deployment:
        authorize(self._audit, self.actor, Permission.DEPLOYMENT_CONTROL, "deployment.resume",
                  deployment_id)
        result = self._deployments.set_status(deployment_id, DeploymentStatus.IN_PROGRESS)
        self._record("deployment.resume", deployment_id)
        return result

    def retry_failed(self, deployment_id: str,
                     statuses: Sequence[ExecutionStatus] = _RETRIABLE) -> list[str]:
        """Queue a new attempt for devices that failed; the rollout engine
        announces them to the devices on its next tick."""
        authorize(self._audit, self.actor, Permission.DEPLOYMENT_CONTROL, "deployment.retry",
                  deployment_id)
        failed = [e.device_id for e in self._deployments.executions(deployment_id)
                  if e.status in statuses]
        if not failed:
            raise NotFound(f"deployment {deployment_id} has no failed devices to retry")
        requeued = self._deployments.requeue(deployment_id, failed)
        self._record("deployment.retry", deployment_id, {"devices": len(requeued)})
        return [e.device_id for e in requeued]

    def _record(self, action: str, subject: str, details: dict[str, Any] | None = None) -> None:
        record_action(self._audit, self.actor, action, subject, details)

