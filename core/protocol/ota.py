"""The OTA job document, its signed manifest, and the status details a device
reports while updating.

A deployment becomes an AWS IoT Jobs job whose document is built here. The
document names the image by type, version, size, SHA-256 and ECDSA signature,
and carries its download URL as the placeholder AWS IoT substitutes with an
S3 presigned URL (``${aws:iot:s3-presigned-url:...}``); the local Jobs service
substitutes the same placeholder with an expiring URL of its own file server,
so a device cannot tell the two apart.

Nobody signs a job document, and anyone who can publish on a device's jobs
topics can write one, so every instruction a device acts on comes from the
**manifest**: canonical JSON bytes (device type, version, size, SHA-256,
downgrade rule, minimum running version, signing key id, issue and expiry
time) signed with ECDSA P-256 when the deployment is created. The document
carries the manifest bytes and signature verbatim (base64), so the device
verifies exactly what was signed and never re-serialises anything. The
unsigned ``firmware`` fields stay for AWS IoT Jobs tooling and older readers;
a device refuses a document whose fields disagree with its manifest.

Status details are string-to-string (an IoT Jobs rule) and few (at most 10
keys), so every key a device may send is listed here.
"""

from __future__ import annotations

import base64
import enum
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from core.errors import ValidationError
from core.model.firmware import Firmware
from core.model.semver import SemVer

OPERATION = "ota-update"
SIGNATURE_ALGORITHM = "ECDSA-P256-SHA256"
DEFAULT_SELFTEST_WINDOW_S = 30.0
MANIFEST_FORMAT = "smartiot-ota-manifest/1"
# How long a signed manifest may be acted on. Long enough for a staged rollout,
# short enough that a captured manifest (a past downgrade, say) cannot be
# replayed for ever; a rollout that outlives it is created again.
DEFAULT_MANIFEST_VALIDITY_S = 30 * 86400
MAX_MANIFEST_BYTES = 4096

_PLACEHOLDER = re.compile(r"^\$\{aws:iot:s3-presigned-url:(?P<target>[^}]+)\}$")


def presigned_placeholder(target: str) -> str:
    """``target`` is what the URL should point at: an ``https://s3...`` object
    URL on AWS, ``firmware/{firmware_id}`` on the local hub."""
    return f"${{aws:iot:s3-presigned-url:{target}}}"


def placeholder_target(url: str) -> str | None:
    """The target inside a presigned-URL placeholder, or None if ``url`` is not one."""
    match = _PLACEHOLDER.match(url)
    return match.group("target") if match else None


class OtaStep(enum.StrEnum):
    """Where a device is in an update; reported as ``statusDetails.step``."""

    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    INSTALLING = "installing"
    REBOOTING = "rebooting"
    SELFTEST = "selftest"
    COMMITTED = "committed"
    ROLLED_BACK = "rolled_back"


class OtaFailure(enum.StrEnum):
    """Why a device refused (REJECTED) or failed (FAILED) an update;
    reported as ``statusDetails.reason``. Rejections are verdicts on the
    document itself, so retrying cannot help; failures may pass on retry."""

    # REJECTED: the image is not acceptable for this device.
    WRONG_DEVICE_TYPE = "wrong-device-type"
    DOWNGRADE = "downgrade"
    SAME_VERSION = "same-version"
    BAD_SIGNATURE = "bad-signature"
    UNTRUSTED_KEY = "untrusted-key"
    BAD_DOCUMENT = "bad-document"
    EXPIRED_MANIFEST = "expired-manifest"
    # FAILED: something went wrong on the way.
    DOWNLOAD_FAILED = "download-failed"
    TRUNCATED = "truncated"
    SHA256_MISMATCH = "sha256-mismatch"
    SELFTEST_FAILED = "selftest-failed"
    INSTALL_FAILED = "install-failed"

    @property
    def is_rejection(self) -> bool:
        return self in _REJECTIONS


_REJECTIONS = frozenset(
    {
        OtaFailure.WRONG_DEVICE_TYPE,
        OtaFailure.DOWNGRADE,
        OtaFailure.SAME_VERSION,
        OtaFailure.BAD_SIGNATURE,
        OtaFailure.UNTRUSTED_KEY,
        OtaFailure.BAD_DOCUMENT,
        OtaFailure.EXPIRED_MANIFEST,
    }
)

# statusDetails keys (values are always strings).
DETAIL_STEP = "step"  # an OtaStep
DETAIL_PROGRESS = "progress"  # download percent, "0".."100"
DETAIL_BYTES = "bytes"  # bytes downloaded so far
DETAIL_REASON = "reason"  # an OtaFailure
DETAIL_MESSAGE = "message"  # human-readable detail for the monitor
DETAIL_FROM = "from_version"
DETAIL_TO = "to_version"
DETAIL_SLOT = "slot"  # "A" or "B": the slot being written or booted


def _b64decode(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError:
        raise ValidationError(f"job document {what} is not base64") from None


@dataclass(frozen=True, slots=True)
class OtaManifest:
    """What a device may install, signed as a whole. ``issued_at``/``expires`` are
    Unix seconds; ``min_version``, when set, is the oldest version the image may
    be installed over (a migration that needs an intermediate release).
    ``image_key_id`` is the key that signed the image (the document's ``keyId``),
    which may differ from ``key_id``, the deployer's key that signed the manifest:
    signing it binds the document's otherwise unsigned ``keyId``. A manifest
    without it (made before it existed) binds the document's ``keyId`` to
    ``key_id`` instead."""

    device_type: str
    version: SemVer
    size: int
    sha256: str
    key_id: str
    issued_at: int
    expires: int
    allow_downgrade: bool = False
    min_version: SemVer | None = None
    image_key_id: str | None = None

    @property
    def bound_image_key_id(self) -> str:
        """The key id the job document must name for the image."""
        return self.image_key_id if self.image_key_id is not None else self.key_id

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "deviceType": self.device_type,
            "version": str(self.version),
            "size": self.size,
            "sha256": self.sha256,
            "allowDowngrade": self.allow_downgrade,
            "keyId": self.key_id,
            "issuedAt": self.issued_at,
            "expires": self.expires,
        }
        if self.min_version is not None:
            out["minVersion"] = str(self.min_version)
        if self.image_key_id is not None:
            out["imageKeyId"] = self.image_key_id
        return out

    def canonical(self) -> bytes:
        """The signed bytes: sorted keys, no spaces, ASCII only."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=True).encode("ascii")

    @classmethod
    def parse(cls, payload: bytes) -> OtaManifest:
        if len(payload) > MAX_MANIFEST_BYTES:
            raise ValidationError(f"manifest is {len(payload)} bytes, over {MAX_MANIFEST_BYTES}")
        try:
            raw = json.loads(payload)
        except (ValueError, RecursionError):
            raise ValidationError("manifest is not JSON") from None
        if not isinstance(raw, dict) or raw.get("format") != MANIFEST_FORMAT:
            raise ValidationError(f"manifest is not a {MANIFEST_FORMAT!r} manifest")
        try:
            size, issued, expires = raw["size"], raw["issuedAt"], raw["expires"]
            for name, value in (("size", size), ("issuedAt", issued), ("expires", expires)):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValidationError(f"manifest {name} {value!r} is not a whole number")
            if size <= 0:
                raise ValidationError("manifest size must be positive")
            sha = str(raw["sha256"])
            if re.fullmatch(r"[0-9a-f]{64}", sha) is None:
                raise ValidationError("manifest sha256 is not 64 lowercase hex digits")
            downgrade = raw.get("allowDowngrade", False)
            if not isinstance(downgrade, bool):
                raise ValidationError("manifest allowDowngrade is not true/false")
            minimum = raw.get("minVersion")
            image_key = raw.get("imageKeyId")
            if image_key is not None and not isinstance(image_key, str):
                raise ValidationError("manifest imageKeyId is not a string")
            return cls(
                device_type=str(raw["deviceType"]),
                version=SemVer.parse(str(raw["version"])),
                size=size,
                sha256=sha,
                key_id=str(raw["keyId"]),
                issued_at=issued,
                expires=expires,
                allow_downgrade=downgrade,
                min_version=None if minimum is None else SemVer.parse(str(minimum)),
                image_key_id=image_key,
            )
        except KeyError as exc:
            raise ValidationError(f"manifest is missing {exc.args[0]!r}") from None


class ManifestSigner(Protocol):
    """What signs manifests: the console's code-signing key (``CodeSigningKeys``)."""

    def current_key_id(self) -> str: ...

    def sign(self, data: bytes) -> tuple[bytes, str]: ...


@dataclass(frozen=True, slots=True)
class SignedManifest:
    payload: bytes
    signature: bytes
    key_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "signatureAlgorithm": SIGNATURE_ALGORITHM,
            "keyId": self.key_id,
        }

    @classmethod
    def parse(cls, raw: Any) -> SignedManifest:
        if not isinstance(raw, dict):
            raise ValidationError("job document manifest is not an object")
        try:
            if raw["signatureAlgorithm"] != SIGNATURE_ALGORITHM:
                raise ValidationError(
                    f"job document manifest.signatureAlgorithm is not {SIGNATURE_ALGORITHM}")
            return cls(_b64decode(raw["payload"], "manifest.payload"),
                       _b64decode(raw["signature"], "manifest.signature"), str(raw["keyId"]))
        except KeyError as exc:
            raise ValidationError(f"job document manifest is missing {exc.args[0]!r}") from None

    def manifest(self) -> OtaManifest:
        """Parse the payload. Call only after the signature over it verified."""
        return OtaManifest.parse(self.payload)


def sign_manifest(manifest: OtaManifest, sign: Callable[[bytes], tuple[bytes, str]]
                  ) -> SignedManifest:
    payload = manifest.canonical()
    signature, key_id = sign(payload)
    if key_id != manifest.key_id:
        raise ValidationError(
            f"the manifest names key {manifest.key_id} but key {key_id} signed it")
    return SignedManifest(payload, signature, key_id)


@dataclass(frozen=True, slots=True)
class OtaJobDocument:
    """What a device is told to install. ``url`` is a placeholder in the stored
    document and a real (expiring) URL in the one delivered to the device."""

    device_type: str
    version: SemVer
    size: int
    sha256: str
    signature: bytes
    key_id: str
    url: str
    allow_downgrade: bool = False
    selftest_window_s: float = DEFAULT_SELFTEST_WINDOW_S
    manifest: SignedManifest | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "operation": OPERATION,
            "firmware": {
                "deviceType": self.device_type,
                "version": str(self.version),
                "size": self.size,
                "sha256": self.sha256,
                "signature": base64.b64encode(self.signature).decode("ascii"),
                "signatureAlgorithm": SIGNATURE_ALGORITHM,
                "keyId": self.key_id,
            },
            "url": self.url,
            "allowDowngrade": self.allow_downgrade,
            "selftestWindowSeconds": self.selftest_window_s,
        }
        if self.manifest is not None:
            out["manifest"] = self.manifest.to_json()
        return out

    def manifest_for(self, *, key_id: str, issued_at: int,
                     validity_s: int = DEFAULT_MANIFEST_VALIDITY_S,
                     min_version: SemVer | None = None) -> OtaManifest:
        """The manifest that vouches for exactly this document's instructions."""
        return OtaManifest(self.device_type, self.version, self.size, self.sha256, key_id,
                           issued_at, issued_at + validity_s, self.allow_downgrade, min_version,
                           image_key_id=self.key_id)

    @classmethod
    def for_firmware(
        cls,
        firmware: Firmware,
        *,
        key_id: str,
        url: str,
        allow_downgrade: bool = False,
        selftest_window_s: float = DEFAULT_SELFTEST_WINDOW_S,
        manifest: SignedManifest | None = None,
    ) -> OtaJobDocument:
        if not firmware.signature:
            raise ValidationError(
                f"firmware {firmware.firmware_id} is not signed; sign it before deploying"
            )
        return cls(
            device_type=firmware.device_type,
            version=firmware.version,
            size=firmware.size,
            sha256=firmware.sha256,
            signature=firmware.signature,
            key_id=key_id,
            url=url,
            allow_downgrade=allow_downgrade,
            selftest_window_s=selftest_window_s,
            manifest=manifest,
        )

    @classmethod
    def parse(cls, doc: Any) -> OtaJobDocument:
        """Devices call this on whatever arrived; every error names the field."""
        if not isinstance(doc, dict) or doc.get("operation") != OPERATION:
            raise ValidationError(f"job document is not an {OPERATION!r} document")
        fw = doc.get("firmware")
        if not isinstance(fw, dict):
            raise ValidationError("job document has no 'firmware' object")
        try:
            algorithm = fw["signatureAlgorithm"]
            if algorithm != SIGNATURE_ALGORITHM:
                raise ValidationError(
                    f"job document firmware.signatureAlgorithm {algorithm!r} is not "
                    f"{SIGNATURE_ALGORITHM}"
                )
            size = fw["size"]
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise ValidationError(f"job document firmware.size {size!r} is not positive")
            sha = str(fw["sha256"]).lower()
            if re.fullmatch(r"[0-9a-f]{64}", sha) is None:
                raise ValidationError("job document firmware.sha256 is not 64 hex digits")
            url = doc["url"]
            if not isinstance(url, str) or not url:
                raise ValidationError("job document url is empty")
            window = float(doc.get("selftestWindowSeconds", DEFAULT_SELFTEST_WINDOW_S))
            manifest = doc.get("manifest")
            return cls(
                device_type=str(fw["deviceType"]),
                version=SemVer.parse(str(fw["version"])),
                size=size,
                sha256=sha,
                signature=base64.b64decode(str(fw["signature"]), validate=True),
                key_id=str(fw["keyId"]),
                url=url,
                allow_downgrade=bool(doc.get("allowDowngrade", False)),
                selftest_window_s=window,
                manifest=None if manifest is None else SignedManifest.parse(manifest),
            )
        except KeyError as exc:
            raise ValidationError(f"job document is missing {exc.args[0]!r}") from None
        except (ValueError, TypeError) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError(f"job document is malformed: {exc}") from None
