"""The firmware use cases as a front end sees them (see core.ports.fleet_api).

Arguments and results are plain domain types (core.model and the small
result records declared here), so an HTTP client of the REST API
can implement the same Protocol.
"""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from core.model import Firmware
from core.ports.signing_keys import TrustedKey

if TYPE_CHECKING:
    from core.services.fleet_view import Page


@dataclass(frozen=True, slots=True)
class VerifyReport:
    firmware_id: str
    sha256_ok: bool
    signature_ok: bool
    key_trusted: bool
    message: str
    # The key ids devices provisioned from this console trust (the same files
    # the local demo fleet re-reads), so a page can say which key they expect.
    trusted_keys: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.sha256_ok and self.signature_ok and self.key_trusted


@dataclass(frozen=True, slots=True)
class SigningKeyInfo:
    """This machine's code-signing key as a person sees it: which key, where its
    public half is (to hand to an admin) and the PEM itself (to provision devices)."""

    key_id: str
    public_pem: bytes
    public_path: str
    private_path: str




class FirmwareApi(Protocol):
    def import_file(self, path: Path, *, version: str, device_type: str,
                    release_notes: str = "", allow_downgrade: bool = False,
                    signature: bytes | None = None,
                    progress: Callable[[int, int], None] | None = None) -> Firmware:
        """Read an image file, sign it (or check the vendor signature) and store it."""

    def import_bytes(self, image: bytes, *, version: str, device_type: str,
                     release_notes: str = "", allow_downgrade: bool = False,
                     signature: bytes | None = None, source: str = "image") -> Firmware:
        """The same as import_file for bytes already in memory (the REST upload)."""

    def list(self, device_type: str | None = None) -> builtins.list[Firmware]:
        """The whole library (or one device type's images)."""

    def page(self, device_type: str | None = None, *, limit: int | None = None,
             next_token: str = "") -> Page[Firmware]:
        """One page of the library; ``next`` of the result asks for the following one."""

    def get(self, firmware_id: str) -> Firmware: ...

    def verify(self, firmware_id: str) -> VerifyReport:
        """Re-read the stored bytes and check SHA-256, signature and the key's trust."""

    def signer(self, key_id: str) -> str:
        """Whose key ``key_id`` is, from the team's list ("" if unknown)."""

    def delete(self, firmware_id: str) -> Firmware:
        """Delete an image no unfinished deployment uses; returns what was deleted."""

    def version_distribution(self) -> dict[str, Counter[str]]:
        """device type -> running version -> number of (this organization's) devices."""

    def signing_key(self) -> SigningKeyInfo | None:
        """This machine's code-signing key; None when there is none (nothing is created)."""

    def create_signing_key(self) -> SigningKeyInfo:
        """Create this person's key pair on purpose (engineers and admins)."""

    def trusted_keys(self, *, include_revoked: bool = False) -> builtins.list[TrustedKey]: ...

    def trust_key(self, public_pem: bytes, owner: str, note: str = "") -> TrustedKey:
        """Add a public key to the team's trusted keys (admins)."""

    def revoke_key(self, key_id: str) -> TrustedKey:
        """Stop trusting a key (admins); images it signed are no longer trusted."""
