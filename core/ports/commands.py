"""Command channel port: request/response commands to a device with a timeout."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


class CommandOutcome(enum.StrEnum):
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class CommandResult:
    request_id: str
    device_id: str
    command: str
    outcome: CommandOutcome
    payload: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None


class CommandChannel(ABC):
    @abstractmethod
    def send(
        self,
        device_id: str,
        command: str,
        params: dict[str, Any] | None = None,
        *,
        timeout_s: float = 10.0,
    ) -> Future[CommandResult]:
        """Send a command (ping, reboot, set-interval, identify, ...); the future
        resolves with the device's answer or a TIMEOUT result, never hangs."""
