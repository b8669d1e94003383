"""Firmware repository port: image metadata plus the bytes behind it."""

from __future__ import annotations

from abc import ABC, abstractmethod

from core.model import Firmware, SemVer


class FirmwareRepository(ABC):
    @abstractmethod
    def add(self, firmware: Firmware, image: bytes) -> None:
        """Store metadata and bytes; raise ValidationError for a duplicate version."""

    @abstractmethod
    def get(self, device_type: str, version: SemVer) -> Firmware: ...

    @abstractmethod
    def get_by_id(self, firmware_id: str) -> Firmware:
        """By ``Firmware.firmware_id`` (``pump@1.2.0``), as deployments name images."""

    @abstractmethod
    def list(self, device_type: str | None = None) -> list[Firmware]: ...

    @abstractmethod
    def read_image(self, device_type: str, version: SemVer) -> bytes: ...

    @abstractmethod
    def delete(self, device_type: str, version: SemVer) -> None: ...
