"""Shadow service port following AWS IoT classic shadow documents."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ShadowDocument:
    device_id: str
    desired: dict[str, Any] = field(default_factory=dict)
    reported: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    updated_at: datetime | None = None

    @property
    def delta(self) -> dict[str, Any]:
        """Desired keys whose value differs from reported, as IoT Core computes it."""
        return _delta(self.desired, self.reported)


def _delta(desired: dict[str, Any], reported: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, want in desired.items():
        have = reported.get(key)
        if isinstance(want, dict) and isinstance(have, dict):
            nested = _delta(want, have)
            if nested:
                out[key] = nested
        elif want != have:
            out[key] = want
    return out


class ShadowService(ABC):
    @abstractmethod
    def get(self, device_id: str) -> ShadowDocument: ...

    @abstractmethod
    def update_desired(
        self, device_id: str, desired: dict[str, Any], *, expected_version: int | None = None
    ) -> ShadowDocument:
        """Merge ``desired`` (None values delete keys, as in IoT Core)."""
