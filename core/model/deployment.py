"""OTA deployments and per-device executions with AWS IoT Jobs semantics.

The execution state machine is exactly IoT Jobs' so the local Jobs service and
the AWS backend agree on what a device may report and when.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from core.errors import IllegalTransition, ValidationError
from core.model.ids import validate_device_id
from core.model.rollout import JobConfig
from core.model.timeutil import require_aware, utcnow


class ExecutionStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    REJECTED = "REJECTED"
    REMOVED = "REMOVED"
    CANCELED = "CANCELED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @classmethod
    def parse(cls, value: str) -> ExecutionStatus:
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(s.value for s in cls)
            raise ValidationError(
                f"job execution status {value!r} is not one of: {allowed}"
            ) from None


TERMINAL_STATES = frozenset(
    {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.TIMED_OUT,
        ExecutionStatus.REJECTED,
        ExecutionStatus.REMOVED,
        ExecutionStatus.CANCELED,
    }
)

# Who may move an execution where, following the IoT Jobs developer guide:
# devices report IN_PROGRESS/SUCCEEDED/FAILED/REJECTED; the service times out,
# cancels or removes. IN_PROGRESS -> IN_PROGRESS is a status-details update.
LEGAL_TRANSITIONS: dict[ExecutionStatus, frozenset[ExecutionStatus]] = {
    ExecutionStatus.QUEUED: frozenset(
        {
            ExecutionStatus.IN_PROGRESS,
            ExecutionStatus.SUCCEEDED,
            ExecutionStatus.FAILED,
            ExecutionStatus.REJECTED,
            ExecutionStatus.TIMED_OUT,
            ExecutionStatus.CANCELED,
            ExecutionStatus.REMOVED,
        }
    ),
    ExecutionStatus.IN_PROGRESS: frozenset(
        {
            ExecutionStatus.IN_PROGRESS,
            ExecutionStatus.SUCCEEDED,
            ExecutionStatus.FAILED,
            ExecutionStatus.REJECTED,
            ExecutionStatus.TIMED_OUT,
            ExecutionStatus.CANCELED,
            ExecutionStatus.REMOVED,
        }
    ),
    **{state: frozenset() for state in TERMINAL_STATES},
}


class DeploymentStatus(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN_PROGRESS"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"
    DELETION_IN_PROGRESS = "DELETION_IN_PROGRESS"


@dataclass(frozen=True, slots=True)
class Execution:
    deployment_id: str
    device_id: str
    status: ExecutionStatus = ExecutionStatus.QUEUED
    version_number: int = 1
    status_details: dict[str, str] = field(default_factory=dict)
    # IoT Jobs' executionNumber: 1 for the first attempt, +1 for each retry.
    execution_number: int = 1
    queued_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    updated_at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        validate_device_id(self.device_id)
        if not isinstance(self.status, ExecutionStatus):
            object.__setattr__(self, "status", ExecutionStatus.parse(str(self.status)))
        object.__setattr__(self, "queued_at", require_aware(self.queued_at, "queued_at"))
        object.__setattr__(self, "updated_at", require_aware(self.updated_at, "updated_at"))

    def transition(
        self,
        to: ExecutionStatus,
        *,
        status_details: dict[str, str] | None = None,
        expected_version: int | None = None,
        at: datetime | None = None,
    ) -> Execution:
        """Apply a status update; raises IllegalTransition for moves IoT Jobs forbids
        and for a stale ``expected_version`` (IoT Jobs' VersionMismatch)."""
        if expected_version is not None and expected_version != self.version_number:
            raise IllegalTransition(
                f"job {self.deployment_id} on {self.device_id}: expected version "
                f"{expected_version} but the execution is at version {self.version_number}"
            )
        if to not in LEGAL_TRANSITIONS[self.status]:
            raise IllegalTransition(
                f"job {self.deployment_id} on {self.device_id}: cannot go from "
                f"{self.status.value} to {to.value}"
                + (" (the execution has finished)" if self.status.is_terminal else "")
            )
        now = at or utcnow()
        # IoT Jobs' UpdateJobExecution: given statusDetails replace the old
        # ones; omitted, they stay. (Merging would leave a stale "progress" on
        # a finished execution.)
        details = dict(self.status_details) if status_details is None else dict(status_details)
        return replace(
            self,
            status=to,
            status_details=details,
            version_number=self.version_number + 1,
            started_at=self.started_at
            or (now if to is ExecutionStatus.IN_PROGRESS else None),
            updated_at=now,
        )


def new_deployment_id() -> str:
    return "ota-" + uuid.uuid4().hex[:12]


@dataclass(frozen=True, slots=True)
class Deployment:
    """A rollout of one firmware image to a target set of devices.

    ``document`` is the IoT Jobs job document (see core.protocol.ota) with its
    URL still a presigned-URL placeholder; ``target_spec`` records how the
    targets were chosen (filter, group or list) for people reading it later;
    ``rollout_state`` is the rollout engine's persisted bookkeeping.
    """

    firmware_id: str
    targets: tuple[str, ...]
    deployment_id: str = field(default_factory=new_deployment_id)
    status: DeploymentStatus = DeploymentStatus.SCHEDULED
    created_by: str = ""
    config: JobConfig = field(default_factory=JobConfig)
    document: dict[str, Any] = field(default_factory=dict)
    target_spec: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    rollout_state: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        if not self.firmware_id:
            raise ValidationError("a deployment needs a firmware image")
        if not self.targets:
            raise ValidationError("a deployment needs at least one target device")
        for device_id in self.targets:
            validate_device_id(device_id)
        if len(set(self.targets)) != len(self.targets):
            raise ValidationError(f"deployment {self.deployment_id} lists a device twice")
        if not isinstance(self.status, DeploymentStatus):
            object.__setattr__(self, "status", DeploymentStatus(str(self.status)))
        object.__setattr__(self, "created_at", require_aware(self.created_at, "created_at"))
        object.__setattr__(self, "updated_at", require_aware(self.updated_at, "updated_at"))

    @property
    def is_finished(self) -> bool:
        return self.status in (DeploymentStatus.COMPLETED, DeploymentStatus.CANCELED)
