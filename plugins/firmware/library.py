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
from core.services.signing_keys import SigningKeyService

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
        team_keys: SigningKeyService | None = None,
        local_trust: bool = True,
    ) -> None:
        """``team_keys``: the keys the team's database trusts (an admin keeps the
        list). ``local_trust``: also trust this machine's key files, as the
        one-process console does for its own demo devices; a team set-up trusts
        only the database's list, so one console's key is not trusted by fiat."""
        self._repo = repository
        self.keys = keys
        self.actor = actor
        self._registry = registry
        self._deployments = deployments
        self._audit = audit
        self.team_keys = team_keys
        self.local_trust = local_trust

    def trusted(self) -> dict[str, codesign.PublicKey]:
        """key id -> public key of every key an image may be signed with here."""
        keys = dict(self.keys.trusted()) if self.local_trust else {}
        if self.team_keys is not None:
            keys.update(self.team_keys.trusted())
        return keys

    def signer(self, key_id: str) -> str:
        """Who signs with ``key_id``, from the team's list ("" if nobody said)."""
        if self.team_keys is None:
            return ""
        known = self.team_keys.owners().get(key_id)
        return "" if known is None else known.owner

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
            self._refuse_untrusted_own_key(source)
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

    def _refuse_untrusted_own_key(self, source: str) -> None:
        """In a team, signing with a key the team does not trust would only make an
        image every device refuses: say so before anything is stored, and never
        create a key as a side effect of an import."""
        if self.local_trust:
            return
        if not self.keys.exists:
            raise ValidationError(
                f"{source}: you have no code-signing key on this machine; create one with "
                "`smartiot firmware key create` and ask an admin to add its public key "
                "(`smartiot firmware keys add FILE --owner NAME`)")
        key_id = self.keys.current_key_id()
        if key_id not in self.trusted():
            raise ValidationError(
                f"{source}: your code-signing key {key_id} is not in the team's trusted keys; "
                f"ask an admin to run `smartiot firmware keys add {self.keys.public_path} "
                f"--owner {self.actor.user}`; nothing imported")

    def _trusted_signer(self, image: bytes, signature: bytes, source: str) -> str:
        for key_id, key in self.trusted().items():
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
        keys = self.trusted()
        key = keys.get(fw.key_id)
        sig_ok = bool(fw.signature) and key is not None and codesign.verify(
            key, image, fw.signature or b""
        )
        trusted = tuple(sorted(keys))
        expected = ", ".join(trusted) if trusted else "no key yet (import an image to create one)"
        who = self.signer(fw.key_id or "")
        known = None if self.team_keys is None else self.team_keys.owners().get(fw.key_id or "")
        signed_by = f"key {fw.key_id or '?'}" + (f" of {who}" if who else "")
        if not fw.signature:
            message = "not signed"
        elif key is None and known is not None and not known.active:
            when = known.revoked_at.strftime("%Y-%m-%d") if known.revoked_at else "?"
            message = (f"signed by {signed_by}, revoked by {known.revoked_by} on {when}: "
                       f"devices must not install it; trusted keys: {expected}")
        elif key is None:
            whose = ("devices provisioned from this console do not trust; they trust"
                     if self.local_trust else "is not in the team's trusted keys; trusted:")
            message = f"signed by {signed_by}, which {whose} {expected}"
        elif not sig_ok:
            message = "signature does NOT verify"
        elif not sha_ok:
            message = "stored image does not match its SHA-256"
        else:
            trusted_by = ("trusted by this console's devices" if fw.key_id in self.keys.trusted()
                          and self.local_trust else "trusted by the team")
            message = f"signature verified ({signed_by}, {trusted_by})"
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
