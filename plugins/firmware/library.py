"""The firmware library: import, sign, verify, list and delete images.

Import is where a bad image is cheapest to stop, so it refuses anything a
device would later refuse: a version that is already there, a downgrade
(unless asked for), an empty file, and a signature that does not verify. An
image is signed with the console's code-signing key unless it arrives with a
vendor signature, which must then verify against a trusted key.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.crypto import codesign
from core.crypto.keystore import CodeSigningKeys
from core.errors import ValidationError
from core.model import DeploymentStatus, Firmware, SemVer
from core.model.roles import Actor, Permission
from core.ports.deployments import DeploymentService
from core.ports.firmware import FirmwareRepository
from core.ports.hub import AuditTrail
from core.ports.registry import DeviceRegistry
from core.services.access import authorize, record_action

Progress = Callable[[int, int], None]
CHUNK = 1 << 20
MAX_IMAGE_BYTES = 64 << 20  # larger than any MCU image; a mistake more likely than firmware


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


class FirmwareLibrary:
    def __init__(
        self,
        repository: FirmwareRepository,
        keys: CodeSigningKeys,
        actor: Actor,
        *,
        registry: DeviceRegistry | None = None,
        deployments: DeploymentService | None = None,
        audit: AuditTrail | None = None,
    ) -> None:
        self._repo = repository
        self.keys = keys
        self.actor = actor
        self._registry = registry
        self._deployments = deployments
        self._audit = audit

    # ------------------------------------------------------------ import
    def import_file(
        self,
        path: Path,
        *,
        version: str,
        device_type: str,
        release_notes: str = "",
        allow_downgrade: bool = False,
        signature: bytes | None = None,
        progress: Progress | None = None,
    ) -> Firmware:
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ValidationError(f"cannot read firmware file {path}: {exc.strerror}") from None
        if size > MAX_IMAGE_BYTES:
            raise ValidationError(
                f"{path} is {size / 2**20:.0f} MiB; images over "
                f"{MAX_IMAGE_BYTES >> 20} MiB are refused"
            )
        chunks = []
        done = 0
        with path.open("rb") as fh:
            while block := fh.read(CHUNK):
                chunks.append(block)
                done += len(block)
                if progress is not None:
                    progress(done, size)
        return self.import_bytes(
            b"".join(chunks), version=version, device_type=device_type,
            release_notes=release_notes, allow_downgrade=allow_downgrade, signature=signature,
            source=str(path),
        )

    def import_bytes(
        self,
        image: bytes,
        *,
        version: str,
        device_type: str,
        release_notes: str = "",
        allow_downgrade: bool = False,
        signature: bytes | None = None,
        source: str = "image",
    ) -> Firmware:
        authorize(self._audit, self.actor, Permission.FIRMWARE_IMPORT, "firmware.import",
                  f"{device_type.strip()}@{version.strip()}")
        semver = SemVer.parse(version.strip())
        device_type = device_type.strip()
        if not device_type:
            raise ValidationError(f"{source}: the device type is empty")
        if not image:
            raise ValidationError(f"{source} is empty")
        self._refuse_duplicate_and_downgrade(device_type, semver, allow_downgrade)
        if signature is None:
            signature, key_id = self.keys.sign(image)
            # Verify on import: a signature that does not check out must never be stored.
            own = codesign.load_public_pem(self.keys.public_pem())
            if not codesign.verify(own, image, signature):
                raise ValidationError(
                    f"{source}: the signature does not verify; nothing imported"
                )
        else:
            key_id = self._trusted_signer(image, signature, source)  # verifies it
        firmware = Firmware(
            version=semver,
            device_type=device_type,
            size=len(image),
            sha256=hashlib.sha256(image).hexdigest(),
            signature=signature,
            key_id=key_id,
            release_notes=release_notes,
        )
        self._repo.add(firmware, image)
        self._record("firmware.import", firmware.firmware_id,
                     {"sha256": firmware.sha256, "size": firmware.size, "key_id": key_id})
        return firmware

    def _refuse_duplicate_and_downgrade(
        self, device_type: str, version: SemVer, allow_downgrade: bool
    ) -> None:
        existing = self._repo.list(device_type)
        for fw in existing:
            if fw.version == version:
                raise ValidationError(
                    f"{device_type} firmware {version} is already in the library; "
                    "publish a new version instead of replacing an image"
                )
        newest = max((fw.version for fw in existing), default=None)
        if newest is not None and version < newest and not allow_downgrade:
            raise ValidationError(
                f"{device_type} firmware {version} is older than {newest} in the library; "
                "importing a downgrade needs --allow-downgrade"
            )

    def _trusted_signer(self, image: bytes, signature: bytes, source: str) -> str:
        for key_id, key in self.keys.trusted().items():
            if codesign.verify(key, image, signature):
                return key_id
        raise ValidationError(
            f"{source}: the supplied signature does not verify against any trusted "
            "code-signing key; nothing imported"
        )

    # ------------------------------------------------------------ queries
    def list(self, device_type: str | None = None) -> list[Firmware]:
        return self._repo.list(device_type)

    def get(self, firmware_id: str) -> Firmware:
        return self._repo.get_by_id(firmware_id)

    def verify(self, firmware_id: str) -> VerifyReport:
        """Re-check the stored bytes: catches a damaged database or a swapped image."""
        fw = self._repo.get_by_id(firmware_id)
        image = self._repo.read_image(fw.device_type, fw.version)
        sha_ok = hashlib.sha256(image).hexdigest() == fw.sha256 and len(image) == fw.size
        key = self.keys.trusted().get(fw.key_id)
        sig_ok = bool(fw.signature) and key is not None and codesign.verify(
            key, image, fw.signature or b""
        )
        trusted = tuple(sorted(self.keys.trusted()))
        expected = ", ".join(trusted) if trusted else "no key yet (import an image to create one)"
        if not fw.signature:
            message = "not signed"
        elif key is None:
            message = (f"signed by key {fw.key_id or '?'}, which devices provisioned from "
                       f"this console do not trust; they trust {expected}")
        elif not sig_ok:
            message = "signature does NOT verify"
        elif not sha_ok:
            message = "stored image does not match its SHA-256"
        else:
            message = f"signature verified (key {fw.key_id}, trusted by this console's devices)"
        return VerifyReport(fw.firmware_id, sha_ok, sig_ok, key is not None, message, trusted)

    def version_distribution(self) -> dict[str, Counter[str]]:
        """device type -> firmware version -> number of devices running it."""
        out: dict[str, Counter[str]] = {}
        if self._registry is None:
            return out
        for device in self._registry.list():
            out.setdefault(device.device_type, Counter())[device.firmware_version or "unknown"] += 1
        return out

    # ------------------------------------------------------------ delete
    def delete(self, firmware_id: str) -> None:
        authorize(self._audit, self.actor, Permission.FIRMWARE_DELETE, "firmware.delete",
                  firmware_id)
        fw = self._repo.get_by_id(firmware_id)
        if self._deployments is not None:
            running = [
                d.deployment_id for d in self._deployments.list()
                if d.firmware_id == fw.firmware_id and not d.is_finished
                and d.status is not DeploymentStatus.DELETION_IN_PROGRESS
            ]
            if running:
                raise ValidationError(
                    f"{fw.firmware_id} is being rolled out by {', '.join(running)}; "
                    "cancel the deployment first"
                )
        self._repo.delete(fw.device_type, fw.version)
        self._record("firmware.delete", fw.firmware_id)

    def _record(self, action: str, subject: str, details: dict[str, Any] | None = None) -> None:
        record_action(self._audit, self.actor, action, subject, details)
