"""The device as the registry knows it.

Mirrors the Smart_IOT backend's ``iot-devices`` item so the local and AWS
backends can hand the same object to the pages.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from core.errors import IllegalTransition, ValidationError
from core.model.ids import validate_device_id
from core.model.timeutil import require_aware, utcnow


class DeviceStatus(enum.StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    WARNING = "warning"
    ERROR = "error"
    DECOMMISSIONED = "decommissioned"

    @classmethod
    def parse(cls, value: str) -> DeviceStatus:
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(s.value for s in cls)
            raise ValidationError(f"device status {value!r} is not one of: {allowed}") from None


@dataclass(frozen=True, slots=True)
class Location:
    """A WGS84 position with an optional human label ("Pump house 3")."""

    latitude: float
    longitude: float
    label: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.latitude) and -90.0 <= self.latitude <= 90.0):
            raise ValidationError(f"latitude {self.latitude!r} must be between -90 and 90")
        if not (math.isfinite(self.longitude) and -180.0 <= self.longitude <= 180.0):
            raise ValidationError(f"longitude {self.longitude!r} must be between -180 and 180")


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    name: str = ""
    device_type: str = "generic"
    status: DeviceStatus = DeviceStatus.OFFLINE
    organization: str = "default"
    location: Location | None = None
    firmware_version: str | None = None
    tags: frozenset[str] = field(default_factory=frozenset)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    last_seen: datetime | None = None
    # Bumped by the store on every save of what people edit (not on traffic):
    # an edit that started from an older version is refused, not merged.
    version: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        validate_device_id(self.device_id)
        if not isinstance(self.status, DeviceStatus):
            object.__setattr__(self, "status", DeviceStatus.parse(str(self.status)))
        if not self.device_type or len(self.device_type) > 64:
            raise ValidationError(
                f"device {self.device_id}: type {self.device_type!r} must be 1-64 characters"
            )
        if not self.organization:
            raise ValidationError(f"device {self.device_id}: organization must not be empty")
        object.__setattr__(self, "tags", frozenset(self.tags))
        for tag in self.tags:
            if not tag or len(tag) > 64 or tag != tag.strip():
                raise ValidationError(
                    f"device {self.device_id}: tag {tag!r} must be 1-64 characters "
                    "without leading or trailing spaces"
                )
        object.__setattr__(self, "created_at", require_aware(self.created_at, "created_at"))
        object.__setattr__(self, "updated_at", require_aware(self.updated_at, "updated_at"))
        if self.last_seen is not None:
            object.__setattr__(self, "last_seen", require_aware(self.last_seen, "last_seen"))

    @property
    def display_name(self) -> str:
        return self.name or self.device_id

    def with_status(self, status: DeviceStatus, *, at: datetime | None = None) -> Device:
        """Status changes are refused once decommissioned: a retired device that
        reappears on the network must be re-registered on purpose, not revived by accident."""
        if self.status is DeviceStatus.DECOMMISSIONED and status is not DeviceStatus.DECOMMISSIONED:
            raise IllegalTransition(
                f"device {self.device_id} is decommissioned; register it again before "
                f"setting it {status.value}"
            )
        return replace(self, status=status, updated_at=at or utcnow())

    def seen(self, at: datetime, *, firmware_version: str | None = None) -> Device:
        at = require_aware(at, "last_seen")
        newest = at if self.last_seen is None or at > self.last_seen else self.last_seen
        return replace(
            self,
            last_seen=newest,
            firmware_version=firmware_version or self.firmware_version,
            updated_at=utcnow(),
        )
