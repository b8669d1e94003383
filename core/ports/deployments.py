"""Deployment service port: OTA jobs and their per-device executions."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod

from core.model import Deployment, Execution, ExecutionStatus


class DeploymentService(ABC):
    @abstractmethod
    def create(self, deployment: Deployment) -> Deployment:
        """Persist the deployment and queue one execution per target."""

    @abstractmethod
    def get(self, deployment_id: str) -> Deployment: ...

    @abstractmethod
    def list(self) -> list[Deployment]: ...

    @abstractmethod
    def executions(self, deployment_id: str) -> builtins.list[Execution]: ...

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
    def cancel(self, deployment_id: str, *, force: bool = False) -> Deployment: ...
