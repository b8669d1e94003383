"""Stand-in for a port the AWS backend cannot serve yet.

``Backend.telemetry`` is required, so until a telemetry adapter is selected
the backend carries this one: every call fails with an error a person can
read (the service turns it into a message), instead of an AttributeError."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NoReturn

from core.errors import SmartIotError
from core.model import Reading
from core.ports.telemetry import Series, TelemetryStore


class TelemetryUnavailable(SmartIotError):
    """No telemetry history adapter is configured for this AWS backend."""


class NoTelemetryHistory(TelemetryStore):
    def _refuse(self) -> NoReturn:
        raise TelemetryUnavailable(
            "telemetry history is not available on this aws backend (no telemetry adapter "
            "is configured for the profile; see docs/aws.md)")

    def write_batch(self, readings: Sequence[Reading]) -> int:
        self._refuse()

    def query(self, device_id: str, metric: str, start: datetime, end: datetime, *,
              bucket_ms: int | None = None) -> Series:
        self._refuse()

    def metrics_for(self, device_id: str) -> list[str]:
        self._refuse()

    def latest(self, device_id: str) -> dict[str, Reading]:
        self._refuse()

    def latest_values(self, metrics: Sequence[str]) -> dict[str, dict[str, float]]:
        self._refuse()

    def delete_before(self, cutoff: datetime) -> int:
        self._refuse()

    def downsample_before(self, cutoff: datetime, bucket_ms: int) -> int:
        self._refuse()
