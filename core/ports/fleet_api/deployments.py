"""The deployments use cases as a front end sees them (see core.ports.fleet_api).

Arguments and results are plain domain types (core.model, core.model.rollout
and the small records declared here), so an HTTP client of the REST API
can implement the same Protocol.
"""

from __future__ import annotations

import builtins
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from core.errors import ValidationError
from core.model import Deployment, DeviceStatus, Execution
from core.model.rollout import JobConfig
from core.ports.registry import DeviceQuery

if TYPE_CHECKING:
    from core.services.fleet_view import Page


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


@dataclass
class TargetMatch:
    """Which devices a target choice finds, before an image is chosen: how many,
    which listed ids are unknown, and devices per type and per (type, version)."""

    count: int = 0
    unknown: tuple[str, ...] = ()
    types: Counter[str] = field(default_factory=Counter)
    versions: dict[str, Counter[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeploymentProgress:
    """A deployment and its executions counted by status (IoT Jobs' names)."""

    deployment: Deployment
    counts: dict[str, int] = field(default_factory=dict)
    # the backend can pause and resume it (AWS IoT Jobs cannot: consoles offer cancel only)
    can_pause: bool = True

    @property
    def deployment_id(self) -> str:
        return self.deployment.deployment_id




class DeploymentsApi(Protocol):
    def match(self, spec: TargetSpec) -> TargetMatch:
        """The devices a target choice finds (the wizard's first page counts them)."""

    def plan(self, firmware_id: str, spec: TargetSpec, *, only_matching_type: bool = True
             ) -> TargetPlan:
        """The dry run: which devices would get the image, which are left out and why."""

    def create(self, firmware_id: str, spec: TargetSpec, config: JobConfig, *,
               description: str = "", allow_downgrade: bool = False,
               only_matching_type: bool = True, selftest_window_s: float = ...,
               manifest_validity_s: int = ...) -> Deployment:
        """Sign the manifest and start the rollout (engineers and admins)."""

    def status(self, deployment_id: str) -> DeploymentProgress:
        """The deployment and its executions counted by status."""

    def executions(self, deployment_id: str) -> builtins.list[Execution]:
        """Where each target is."""

    def list(self) -> builtins.list[DeploymentProgress]:
        """Every deployment this person may see, newest first."""

    def page(self, *, limit: int | None = None, next_token: str = ""
             ) -> Page[DeploymentProgress]: ...

    def pause(self, deployment_id: str) -> Deployment: ...

    def resume(self, deployment_id: str) -> Deployment: ...

    def cancel(self, deployment_id: str, *, force: bool = False) -> Deployment:
        """Stop for good; ``force`` also stops devices that are installing."""

    def retry_failed(self, deployment_id: str) -> builtins.list[str]:
        """Queue another attempt for FAILED and TIMED_OUT devices; their ids."""
