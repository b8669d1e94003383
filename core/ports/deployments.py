"""Deployment service port: OTA jobs and their per-device executions.

A deployment lists its targets up front, but an execution exists only once
the rollout has *released* the device (IoT Jobs creates executions as its
rollout rate allows). So "executions" are the devices that were told, and
``len(targets) - len(executions)`` are still waiting for their turn.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any

from core.model import Deployment, DeploymentStatus, Execution, ExecutionStatus


class DeploymentService(ABC):
    #: whether a running rollout can be paused and resumed (``set_status``).
    #: AWS IoT Jobs cannot: its service says False, and consoles offer cancel only.
    can_pause: bool = True

    @abstractmethod
    def create(self, deployment: Deployment) -> Deployment:
        """Persist the deployment (status SCHEDULED, no executions yet)."""

    @abstractmethod
    def get(self, deployment_id: str) -> Deployment: ...

    @abstractmethod
    def list(self) -> list[Deployment]: ...

    @abstractmethod
    def executions(self, deployment_id: str) -> builtins.list[Execution]: ...

    @abstractmethod
    def execution(self, deployment_id: str, device_id: str) -> Execution:
        """One execution; NotFound if the device was not released to (or targeted)."""

    @abstractmethod
    def counts(self, deployment_id: str) -> dict[str, int]:
        """Executions per status value, plus ``"PENDING"`` for targets not yet released.

        The values add up to the number of targets. Once a deployment is
        canceled its unreleased targets count as ``"CANCELED"``: nobody will
        release them, so they are not waiting for anything."""

    @abstractmethod
    def for_device(
        self, device_id: str, statuses: Iterable[ExecutionStatus] | None = None
    ) -> builtins.list[Execution]:
        """A device's executions, oldest queued first (what the Jobs API lists
        and what ``$next`` picks from); ``statuses`` filters them."""

    @abstractmethod
    def release(self, deployment_id: str, device_ids: Iterable[str]) -> builtins.list[Execution]:
        """Create QUEUED executions for targets not yet released and move the
        deployment to IN_PROGRESS. Devices already released are skipped."""

    @abstractmethod
    def update_execution(
        self,
        deployment_id: str,
        device_id: str,
        status: ExecutionStatus,
        *,
        status_details: dict[str, str] | None = None,
        expected_version: int | None = None,
    ) -> Execution:
        """Apply a device's or the service's status update with the IoT Jobs rules."""

    @abstractmethod
    def requeue(self, deployment_id: str, device_ids: Iterable[str]) -> builtins.list[Execution]:
        """Retry: put finished FAILED/TIMED_OUT/REJECTED executions back to QUEUED
        with ``execution_number + 1`` (a new attempt) and the deployment back in
        progress. Devices whose execution is not in one of those states are skipped."""

    @abstractmethod
    def set_status(
        self, deployment_id: str, status: DeploymentStatus, *, reason: str = ""
    ) -> Deployment:
        """Pause/resume (PAUSED <-> IN_PROGRESS); refused once the deployment has ended."""

    @abstractmethod
    def cancel(self, deployment_id: str, *, force: bool = False, reason: str = "") -> Deployment:
        """Cancel queued executions (and in-progress ones with ``force``)."""

    @abstractmethod
    def save_rollout_state(self, deployment_id: str, state: Mapping[str, Any]) -> None:
        """The rollout engine's bookkeeping (current rate step, counters), kept
        in the store so a restarted hub resumes the rollout where it was."""
