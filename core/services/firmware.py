"""The firmware library's use cases: import, sign, verify, list, get and delete
images, the version distribution, and the code-signing keys behind them.

Every front end (the Firmware page, ``smartiot firmware``, the REST API) calls
:class:`FirmwareService` with the person acting, so the permission check, the
audit entry (refusals too) and the organization scope are the same wherever a
button or a command was used.

Import is where a bad image is cheapest to stop, so it refuses anything a
device would later refuse: a version that is already there, a downgrade
(unless asked for), an empty file, and a signature that does not verify. An
image is signed with this machine's code-signing key unless it arrives with a
vendor signature, which must then verify against a trusted key.

The library itself is shared by the organizations of one fleet (an image is
built for a device type, not for a customer); what depends on devices (the
version distribution, the deployments that hold an image) is limited to the
actor's organization.
"""

from __future__ import annotations

import builtins
import hashlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core.crypto import codesign
from core.crypto.keystore import CodeSigningKeys
from core.errors import NotFound, ValidationError
from core.model import DeploymentStatus, Firmware, SemVer
from core.model.roles import Actor, Permission
from core.ports.deployments import DeploymentService
from core.ports.firmware import DirectUploads, FirmwareRepository, UploadSlots
from core.ports.fleet_api.firmware import SigningKeyInfo, VerifyReport
from core.ports.hub import AuditTrail
from core.ports.registry import DeviceQuery, DeviceRegistry
from core.ports.signing_keys import TrustedKey
from core.services.access import authorize, record_action
from core.services.firmware_uploads import DEFAULT_PART_SIZE, UploadTicket
from core.services.fleet_view import Page, _limit, _page, decode_token
from core.services.signing_keys import SigningKeyService, create_signing_key

if TYPE_CHECKING:
    from core.services.wiring import Services

__all__ = ["MAX_IMAGE_BYTES", "FirmwareService", "FirmwareSession", "SigningKeyInfo",
           "VerifyReport"]

Progress = Callable[[int, int], None]
CHUNK = 1 << 20
MAX_IMAGE_BYTES = 64 << 20  # larger than any MCU image; a mistake more likely than firmware


class FirmwareService:
    def __init__(
        self,
        repository: FirmwareRepository | None,
        keys: CodeSigningKeys | None,
        *,
        registry: DeviceRegistry | None = None,
        deployments: DeploymentService | None = None,
        audit: AuditTrail | None = None,
        team_keys: SigningKeyService | None = None,
        local_trust: bool = True,
    ) -> None:
        """``team_keys``: the keys the team's database trusts (an admin keeps the
        list). ``local_trust``: also trust this machine's key files, as the
        one-process console does for its own demo devices; a team set-up (and the
        REST API) trusts only the database's list, so one machine's key is not
        trusted by fiat."""
        self._repo = repository
        self._keys = keys
        self._registry = registry
        self._deployments = deployments
        self._audit = audit
        self.team_keys = team_keys
        self.local_trust = local_trust

    # ------------------------------------------------------------ parts
    def _repository(self) -> FirmwareRepository:
        if self._repo is None:
            raise NotFound("this backend has no firmware library")
        return self._repo

    def _signing(self) -> CodeSigningKeys:
        if self._keys is None:
            raise ValidationError("no code-signing key store is configured here, so images "
                                  "cannot be signed or checked")
        return self._keys

    def _team(self) -> SigningKeyService:
        if self.team_keys is None:
            raise NotFound("this backend keeps no list of trusted code-signing keys")
        return self.team_keys

    def trusted(self) -> dict[str, codesign.PublicKey]:
        """key id -> public key of every key an image may be signed with here."""
        keys = dict(self._keys.trusted()) if self.local_trust and self._keys else {}
        if self.team_keys is not None:
            keys.update(self.team_keys.trusted())
        return keys

    def signer(self, actor: Actor, key_id: str) -> str:
        """Who signs with ``key_id``, from the team's list ("" if nobody said)."""
        if self.team_keys is None or not key_id:
            return ""
        known = self.team_keys.owners().get(key_id)
        return "" if known is None else known.owner

    # ------------------------------------------------------------ import
    def import_file(
        self,
        actor: Actor,
        path: Path,
        *,
        version: str,
        device_type: str,
        release_notes: str = "",
        allow_downgrade: bool = False,
        signature: bytes | None = None,
        progress: Progress | None = None,
    ) -> Firmware:
        """Read ``path`` (in chunks, reporting ``progress``) and import it."""
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
        try:
            with path.open("rb") as fh:
                while block := fh.read(CHUNK):
                    chunks.append(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, size)
        except OSError as exc:
            raise ValidationError(f"cannot read firmware file {path}: {exc.strerror}") from None
        return self.import_bytes(
            actor, b"".join(chunks), version=version, device_type=device_type,
            release_notes=release_notes, allow_downgrade=allow_downgrade, signature=signature,
            source=str(path),
        )

    def import_bytes(
        self,
        actor: Actor,
        image: bytes,
        *,
        version: str,
        device_type: str,
        release_notes: str = "",
        allow_downgrade: bool = False,
        signature: bytes | None = None,
        source: str = "image",
    ) -> Firmware:
        authorize(self._audit, actor, Permission.FIRMWARE_IMPORT, "firmware.import",
                  f"{device_type.strip()}@{version.strip()}")
        repo = self._repository()
        semver = SemVer.parse(version.strip())
        device_type = device_type.strip()
        if not device_type:
            raise ValidationError(f"{source}: the device type is empty")
        if not image:
            raise ValidationError(f"{source} is empty")
        if len(image) > MAX_IMAGE_BYTES:
            raise ValidationError(f"{source} is {len(image) / 2**20:.0f} MiB; images over "
                                  f"{MAX_IMAGE_BYTES >> 20} MiB are refused")
        self._refuse_duplicate_and_downgrade(device_type, semver, allow_downgrade)
        if signature is None:
            keys = self._signing()
            self._refuse_untrusted_own_key(actor, keys, source)
            signature, key_id = keys.sign(image)
            # Verify on import: a signature that does not check out must never be stored.
            own = codesign.load_public_pem(keys.public_pem())
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
        repo.add(firmware, image)
        record_action(self._audit, actor, "firmware.import", firmware.firmware_id,
                      {"sha256": firmware.sha256, "size": firmware.size, "key_id": key_id})
        return firmware

    def _refuse_duplicate_and_downgrade(
        self, device_type: str, version: SemVer, allow_downgrade: bool
    ) -> None:
        existing = self._repository().list(device_type)
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

    def _refuse_untrusted_own_key(self, actor: Actor, keys: CodeSigningKeys,
                                  source: str) -> None:
        """In a team, signing with a key the team does not trust would only make an
        image every device refuses: say so before anything is stored, and never
        create a key as a side effect of an import."""
        if self.local_trust:
            return
        if not keys.exists:
            raise ValidationError(
                f"{source}: there is no code-signing key here; create one with "
                "`smartiot firmware key create` and ask an admin to add its public key "
                "(`smartiot firmware keys add FILE --owner NAME`)")
        key_id = keys.current_key_id()
        if key_id not in self.trusted():
            raise ValidationError(
                f"{source}: the code-signing key {key_id} is not in the team's trusted keys; "
                f"ask an admin to run `smartiot firmware keys add {keys.public_path} "
                f"--owner {actor.user}`; nothing imported")

    def _trusted_signer(self, image: bytes, signature: bytes, source: str) -> str:
        for key_id, key in self.trusted().items():
            if codesign.verify(key, image, signature):
                return key_id
        raise ValidationError(
            f"{source}: the supplied signature does not verify against any trusted "
            "code-signing key; nothing imported"
        )

    def check_import(self, actor: Actor, subject: str) -> None:
        """The role check of an import, for a front end that would otherwise have
        to parse a large body first (a caller without the role learns nothing,
        not even that the body was malformed); refusals are audited."""
        authorize(self._audit, actor, Permission.FIRMWARE_IMPORT, "firmware.import", subject)

    # ------------------------------------------------------------ direct uploads
    def _uploads(self) -> DirectUploads:
        repo = self._repository()
        if not isinstance(repo, DirectUploads):
            raise NotFound("direct upload is not available on this backend; send the image "
                           "in the request instead (POST /firmware/upload)")
        return repo

    def start_upload(self, actor: Actor, *, device_type: str, version: str, size: int,
                     sha256: str, allow_downgrade: bool = False, multipart: bool | None = None,
                     part_size: int = DEFAULT_PART_SIZE) -> tuple[UploadTicket, UploadSlots]:
        """Where to PUT the image's bytes (one URL, or one per part when
        ``multipart`` or the image is larger than a part). Refuses what import
        would refuse before a byte is sent: a release already in the library, a
        downgrade not asked for, an empty or oversized image."""
        subject = f"{device_type.strip()}@{version.strip()}"
        authorize(self._audit, actor, Permission.FIRMWARE_IMPORT, "firmware.import", subject)
        uploads = self._uploads()
        many = size > part_size if multipart is None else multipart
        ticket = UploadTicket(device_type.strip(), version.strip(), size, sha256.strip().lower(),
                              "", part_size).checked(MAX_IMAGE_BYTES)
        self._refuse_duplicate_and_downgrade(ticket.device_type, SemVer.parse(ticket.version),
                                             allow_downgrade)
        slots = uploads.begin(ticket.draft(), multipart=many, part_size=part_size)
        return UploadTicket(ticket.device_type, ticket.version, size, ticket.sha256,
                            slots.upload_id, slots.part_size), slots

    def upload_status(self, actor: Actor, token: str) -> tuple[UploadTicket, UploadSlots]:
        """Resume: the parts storage holds and fresh URLs for the others."""
        authorize(self._audit, actor, Permission.FIRMWARE_IMPORT, "firmware.import", "upload")
        uploads = self._uploads()
        ticket = UploadTicket.parse(token, MAX_IMAGE_BYTES)
        return ticket, uploads.slots(ticket.draft(), ticket.upload_id, ticket.part_size)

    def complete_upload(self, actor: Actor, token: str, *, signature: bytes,
                        release_notes: str = "", allow_downgrade: bool = False) -> Firmware:
        """Publish the uploaded image: the signature (made on the engineer's
        machine) must verify against the declared SHA-256 with a key the team
        trusts, then storage checks the bytes hash to it; audited like an import."""
        authorize(self._audit, actor, Permission.FIRMWARE_IMPORT, "firmware.import", "upload")
        uploads = self._uploads()
        ticket = UploadTicket.parse(token, MAX_IMAGE_BYTES)
        source = f"upload of {ticket.firmware_id}"
        self._refuse_duplicate_and_downgrade(ticket.device_type, SemVer.parse(ticket.version),
                                             allow_downgrade)
        digest = bytes.fromhex(ticket.sha256)
        key_id = next((k for k, key in self.trusted().items()
                       if codesign.verify_digest(key, digest, signature)), None)
        if key_id is None:
            raise ValidationError(
                f"{source}: the signature does not verify against any trusted code-signing "
                "key (sign with your own key, `smartiot firmware key create`, and ask an admin "
                "to add it); nothing imported")
        firmware = ticket.draft(signature=signature, key_id=key_id,
                                release_notes=release_notes)
        uploads.finish(firmware, ticket.upload_id, ticket.part_size)
        record_action(self._audit, actor, "firmware.import", firmware.firmware_id,
                      {"sha256": firmware.sha256, "size": firmware.size, "key_id": key_id,
                       "via": "direct upload",
                       "parts": 1 if not ticket.upload_id
                       else -(-ticket.size // ticket.part_size)})
        return firmware

    def abort_upload(self, actor: Actor, token: str) -> UploadTicket:
        """Drop what was sent (S3 keeps, and bills, parts until then)."""
        authorize(self._audit, actor, Permission.FIRMWARE_IMPORT, "firmware.import", "upload")
        uploads = self._uploads()
        ticket = UploadTicket.parse(token, MAX_IMAGE_BYTES)
        uploads.abort(ticket.draft(), ticket.upload_id, ticket.part_size)
        record_action(self._audit, actor, "firmware.upload.abort", ticket.firmware_id,
                      {"upload_id": ticket.upload_id})
        return ticket

    # ------------------------------------------------------------ queries
    def list(self, actor: Actor, device_type: str | None = None) -> builtins.list[Firmware]:
        return self._repository().list(device_type or None)

    def page(self, actor: Actor, device_type: str | None = None, *, limit: int | None = None,
             next_token: str = "") -> Page[Firmware]:
        """One page of the library, newest device type and version order kept."""
        size = _limit(limit)
        offset = decode_token(next_token)
        rows = self.list(actor, device_type)
        return _page(rows[offset:offset + size + 1], offset, size)

    def get(self, actor: Actor, firmware_id: str) -> Firmware:
        return self._repository().get_by_id(firmware_id)

    def verify(self, actor: Actor, firmware_id: str) -> VerifyReport:
        """Re-check the stored bytes: catches a damaged database or a swapped image."""
        repo = self._repository()
        fw = repo.get_by_id(firmware_id)
        image = repo.read_image(fw.device_type, fw.version)
        sha_ok = hashlib.sha256(image).hexdigest() == fw.sha256 and len(image) == fw.size
        keys = self.trusted()
        key = keys.get(fw.key_id)
        sig_ok = bool(fw.signature) and key is not None and codesign.verify(
            key, image, fw.signature or b""
        )
        trusted = tuple(sorted(keys))
        return VerifyReport(fw.firmware_id, sha_ok, sig_ok, key is not None,
                            self._verdict(actor, fw, key is not None, sig_ok, sha_ok, trusted),
                            trusted)

    def _verdict(self, actor: Actor, fw: Firmware, key_known: bool, sig_ok: bool,
                 sha_ok: bool, trusted: tuple[str, ...]) -> str:
        expected = ", ".join(trusted) if trusted else "no key yet (import an image to create one)"
        who = self.signer(actor, fw.key_id or "")
        known = None if self.team_keys is None else self.team_keys.owners().get(fw.key_id or "")
        signed_by = f"key {fw.key_id or '?'}" + (f" of {who}" if who else "")
        if not fw.signature:
            return "not signed"
        if not key_known and known is not None and not known.active:
            when = known.revoked_at.strftime("%Y-%m-%d") if known.revoked_at else "?"
            return (f"signed by {signed_by}, revoked by {known.revoked_by} on {when}: "
                    f"devices must not install it; trusted keys: {expected}")
        if not key_known:
            whose = ("devices provisioned from this console do not trust; they trust"
                     if self.local_trust else "is not in the team's trusted keys; trusted:")
            return f"signed by {signed_by}, which {whose} {expected}"
        if not sig_ok:
            return "signature does NOT verify"
        if not sha_ok:
            return "stored image does not match its SHA-256"
        local = self._keys is not None and fw.key_id in self._keys.trusted()
        trusted_by = ("trusted by this console's devices" if local and self.local_trust
                      else "trusted by the team")
        return f"signature verified ({signed_by}, {trusted_by})"

    def version_distribution(self, actor: Actor) -> dict[str, Counter[str]]:
        """device type -> firmware version -> number of the actor's devices running it."""
        out: dict[str, Counter[str]] = {}
        if self._registry is None:
            return out
        orgs = frozenset({actor.organization}) if actor.organization else frozenset()
        for device in self._registry.list(DeviceQuery(organizations=orgs)):
            out.setdefault(device.device_type, Counter())[device.firmware_version or "unknown"] += 1
        return out

    # ------------------------------------------------------------ delete
    def delete(self, actor: Actor, firmware_id: str) -> Firmware:
        authorize(self._audit, actor, Permission.FIRMWARE_DELETE, "firmware.delete",
                  firmware_id)
        repo = self._repository()
        fw = repo.get_by_id(firmware_id)
        if self._deployments is not None:
            # Every organization's rollouts count: an image must not vanish under
            # a deployment the actor cannot see.
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
        repo.delete(fw.device_type, fw.version)
        record_action(self._audit, actor, "firmware.delete", fw.firmware_id)
        return fw

    # ------------------------------------------------------------ signing keys
    def signing_key(self, actor: Actor) -> SigningKeyInfo | None:
        """This machine's code-signing key, or None when there is none (nothing
        is created by asking)."""
        keys = self._signing()
        if not keys.public_path.exists():
            return None
        pem = keys.public_path.read_bytes()
        return SigningKeyInfo(codesign.key_id(codesign.load_public_pem(pem)), pem,
                              str(keys.public_path), str(keys.private_path))

    def create_signing_key(self, actor: Actor) -> SigningKeyInfo:
        """Create the key pair on purpose (engineers and admins, audited)."""
        keys = self._signing()
        create_signing_key(keys, actor, self._audit)
        info = self.signing_key(actor)
        assert info is not None  # just written
        return info

    def trusted_keys(self, actor: Actor, *, include_revoked: bool = False
                     ) -> builtins.list[TrustedKey]:
        return [] if self.team_keys is None else self.team_keys.list(
            include_revoked=include_revoked)

    def trust_key(self, actor: Actor, public_pem: bytes, owner: str,
                  note: str = "") -> TrustedKey:
        return self._team().add(public_pem, owner, actor, note)

    def revoke_key(self, actor: Actor, key_id: str) -> TrustedKey:
        return self._team().revoke(key_id, actor)


class FirmwareSession:
    """The firmware use cases for one person (core.ports.fleet_api.FirmwareApi)."""

    def __init__(self, services: Services, actor: Actor) -> None:
        self._service = services.firmware
        self._actor = actor

    def import_file(self, path: Path, *, version: str, device_type: str,
                    release_notes: str = "", allow_downgrade: bool = False,
                    signature: bytes | None = None, progress: Progress | None = None
                    ) -> Firmware:
        return self._service.import_file(
            self._actor, path, version=version, device_type=device_type,
            release_notes=release_notes, allow_downgrade=allow_downgrade, signature=signature,
            progress=progress)

    def import_bytes(self, image: bytes, *, version: str, device_type: str,
                     release_notes: str = "", allow_downgrade: bool = False,
                     signature: bytes | None = None, source: str = "image") -> Firmware:
        return self._service.import_bytes(
            self._actor, image, version=version, device_type=device_type,
            release_notes=release_notes, allow_downgrade=allow_downgrade, signature=signature,
            source=source)

    def list(self, device_type: str | None = None) -> builtins.list[Firmware]:
        return self._service.list(self._actor, device_type)

    def page(self, device_type: str | None = None, *, limit: int | None = None,
             next_token: str = "") -> Page[Firmware]:
        return self._service.page(self._actor, device_type, limit=limit, next_token=next_token)

    def get(self, firmware_id: str) -> Firmware:
        return self._service.get(self._actor, firmware_id)

    def verify(self, firmware_id: str) -> VerifyReport:
        return self._service.verify(self._actor, firmware_id)

    def signer(self, key_id: str) -> str:
        return self._service.signer(self._actor, key_id)

    def delete(self, firmware_id: str) -> Firmware:
        return self._service.delete(self._actor, firmware_id)

    def version_distribution(self) -> dict[str, Counter[str]]:
        return self._service.version_distribution(self._actor)

    def signing_key(self) -> SigningKeyInfo | None:
        return self._service.signing_key(self._actor)

    def create_signing_key(self) -> SigningKeyInfo:
        return self._service.create_signing_key(self._actor)

    def trusted_keys(self, *, include_revoked: bool = False) -> builtins.list[TrustedKey]:
        return self._service.trusted_keys(self._actor, include_revoked=include_revoked)

    def trust_key(self, public_pem: bytes, owner: str, note: str = "") -> TrustedKey:
        return self._service.trust_key(self._actor, public_pem, owner, note)

    def revoke_key(self, key_id: str) -> TrustedKey:
        return self._service.revoke_key(self._actor, key_id)
