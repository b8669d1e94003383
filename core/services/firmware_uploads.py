"""Uploading a firmware image straight to the library's storage (presigned
URLs), for the REST API's ``/firmware/uploads`` routes.

Why: an image through the API is one request of at most 16 MiB that starts
over from the first byte after a network cut. Here the console PUTs the bytes
to storage itself (S3 on AWS), in parts for a large image, and after a cut or
a restart asks which parts storage holds and sends only the rest.

What is trusted: nothing the uploader says until it is checked. The upload is
named by a ticket (an opaque token holding type, version, size, SHA-256, the
storage's upload id and the part size), which the client keeps to resume; a
tampered ticket can only point at bytes that then fail the checks. On
completion the signature (made on the engineer's machine over the image, as
import makes it) must verify against the declared SHA-256 with a key the team
trusts, then storage checks that the stored bytes are that size and hash
before the image enters the library; otherwise they are deleted and nothing
is published. The role is checked before anything else, in every step.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from core.errors import ValidationError
from core.model import Firmware, SemVer

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# S3's multipart limits: parts of at least 5 MiB; 8 MiB by default, so a 64 MiB
# image (the library's limit) is 8 parts and a cut costs at most 8 MiB.
MIN_PART_SIZE = 5 << 20
DEFAULT_PART_SIZE = 8 << 20
MAX_PART_SIZE = 64 << 20
MAX_TICKET = 2048


@dataclass(frozen=True, slots=True)
class UploadTicket:
    """What identifies an upload between its steps (and across a restart)."""

    device_type: str
    version: str
    size: int
    sha256: str
    upload_id: str  # "" for a single PUT
    part_size: int

    @property
    def firmware_id(self) -> str:
        return f"{self.device_type}@{self.version}"

    def draft(self, *, signature: bytes | None = None, key_id: str = "",
              release_notes: str = "") -> Firmware:
        """The library record the bytes must match (signed once completed)."""
        return Firmware(version=SemVer.parse(self.version), device_type=self.device_type,
                        size=self.size, sha256=self.sha256, signature=signature, key_id=key_id,
                        release_notes=release_notes)

    def token(self) -> str:
        raw = json.dumps({"t": self.device_type, "v": self.version, "s": self.size,
                          "h": self.sha256, "u": self.upload_id, "p": self.part_size},
                         separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def parse(cls, token: str, max_size: int) -> UploadTicket:
        """Every field checked again: the ticket came back from a client."""
        where = "upload ticket"
        if not token or len(token) > MAX_TICKET:
            raise ValidationError(f"{where}: missing or longer than {MAX_TICKET} characters")
        try:
            raw: Any = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            ticket = cls(str(raw["t"]), str(raw["v"]), int(raw["s"]), str(raw["h"]),
                         str(raw["u"]), int(raw["p"]))
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise ValidationError(f"{where}: not one this API handed out (start the upload "
                                  "again with POST /firmware/uploads)") from None
        return ticket.checked(max_size)

    def checked(self, max_size: int) -> UploadTicket:
        what = f"upload of {self.device_type}@{self.version}"
        if not self.device_type.strip():
            raise ValidationError(f"{what}: the device type is empty")
        SemVer.parse(self.version)
        if not 0 < self.size <= max_size:
            raise ValidationError(f"{what}: size {self.size} must be 1 to {max_size} bytes")
        if SHA256_HEX.fullmatch(self.sha256) is None:
            raise ValidationError(f"{what}: sha256 must be 64 lowercase hex digits")
        if not MIN_PART_SIZE <= self.part_size <= MAX_PART_SIZE and self.upload_id:
            raise ValidationError(f"{what}: part size {self.part_size} must be "
                                  f"{MIN_PART_SIZE} to {MAX_PART_SIZE} bytes")
        return self
