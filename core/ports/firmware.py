"""Firmware repository port: image metadata plus the bytes behind it, and
(for storage that can take them from the uploader directly) uploads through
presigned URLs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

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


@dataclass(frozen=True, slots=True)
class UploadSlot:
    """Where one part of an image goes: PUT bytes ``[start, end)`` of the image
    to ``url`` with ``headers`` (they are signed into the URL: send them as given)."""

    part_number: int
    start: int
    end: int
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UploadSlots:
    """An image being uploaded straight to storage. ``upload_id`` is empty for a
    single PUT; otherwise the image goes in ``part_count`` parts of ``part_size``
    bytes (the last may be shorter). ``held`` are the parts storage already has
    (sent before an interruption); ``slots`` the URLs of the others."""

    upload_id: str
    part_size: int
    part_count: int
    held: tuple[int, ...]
    slots: tuple[UploadSlot, ...]
    expires_in_s: int


class DirectUploads(ABC):
    """A library whose storage takes an image's bytes from the uploader itself
    (presigned URLs), so a large image never passes through the API. The
    ``firmware`` given names the image (type, version) and what its bytes must
    be (size, SHA-256); nothing enters the library before :meth:`finish`."""

    @abstractmethod
    def begin(self, firmware: Firmware, *, multipart: bool, part_size: int) -> UploadSlots:
        """Refuse a release already in the library; otherwise the URLs to send to."""

    @abstractmethod
    def slots(self, firmware: Firmware, upload_id: str, part_size: int) -> UploadSlots:
        """Resume: which parts are held, and fresh URLs for the rest. NotFound
        when the upload is no longer open (completed or aborted)."""

    @abstractmethod
    def finish(self, firmware: Firmware, upload_id: str, part_size: int) -> None:
        """Check the stored bytes (size, SHA-256, encrypted at rest) and publish
        ``firmware`` (signature included) in the library; bytes that do not match
        are deleted and ValidationError says what differs."""

    @abstractmethod
    def abort(self, firmware: Firmware, upload_id: str, part_size: int) -> None:
        """Drop what was sent of an upload that will not be completed."""
