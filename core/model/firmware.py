"""A firmware image as the library stores it (the bytes live elsewhere)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from core.errors import ValidationError
from core.model.semver import SemVer
from core.model.timeutil import require_aware, utcnow

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Firmware:
    version: SemVer
    device_type: str
    size: int
    sha256: str
    signature: bytes | None = None
    # Which code-signing key made ``signature`` (core.crypto.codesign.key_id).
    key_id: str = ""
    release_notes: str = ""
    created_at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        if not isinstance(self.version, SemVer):
            object.__setattr__(self, "version", SemVer.parse(self.version))
        if not self.device_type:
            raise ValidationError("firmware needs the device type it is built for")
        if self.size <= 0:
            raise ValidationError(f"firmware {self.version}: size {self.size} must be positive")
        digest = self.sha256.lower()
        if _SHA256.fullmatch(digest) is None:
            raise ValidationError(
                f"firmware {self.version}: SHA-256 {self.sha256!r} must be 64 hexadecimal digits"
            )
        object.__setattr__(self, "sha256", digest)
        object.__setattr__(self, "created_at", require_aware(self.created_at, "created_at"))

    @property
    def firmware_id(self) -> str:
        """Stable key: one image per (device type, version)."""
        return f"{self.device_type}@{self.version}"

    @property
    def is_signed(self) -> bool:
        return bool(self.signature)


def parse_firmware_id(firmware_id: str) -> tuple[str, SemVer]:
    """Inverse of ``Firmware.firmware_id`` (``{device_type}@{version}``)."""
    device_type, sep, version = firmware_id.rpartition("@")
    if not sep or not device_type:
        raise ValidationError(
            f"firmware id {firmware_id!r} is not of the form DEVICE_TYPE@VERSION"
        )
    return device_type, SemVer.parse(version)
