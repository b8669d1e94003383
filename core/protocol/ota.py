"""The OTA job document and the status details a device reports while updating.

A deployment becomes an AWS IoT Jobs job whose document is built here. The
document names the image by type, version, size, SHA-256 and ECDSA signature,
and carries its download URL as the placeholder AWS IoT substitutes with an
S3 presigned URL (``${aws:iot:s3-presigned-url:...}``); the local Jobs service
substitutes the same placeholder with an expiring URL of its own file server,
so a device cannot tell the two apart.

Status details are string-to-string (an IoT Jobs rule) and few (at most 10
keys), so every key a device may send is listed here.
"""

from __future__ import annotations

import base64
import enum
import re
from dataclasses import dataclass
from typing import Any

from core.errors import ValidationError
from core.model.firmware import Firmware
from core.model.semver import SemVer

OPERATION = "ota-update"
SIGNATURE_ALGORITHM = "ECDSA-P256-SHA256"
DEFAULT_SELFTEST_WINDOW_S = 30.0

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

    def to_json(self) -> dict[str, Any]:
        return {
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

    @classmethod
    def for_firmware(
        cls,
        firmware: Firmware,
        *,
        key_id: str,
        url: str,
        allow_downgrade: bool = False,
        selftest_window_s: float = DEFAULT_SELFTEST_WINDOW_S,
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
            )
        except KeyError as exc:
            raise ValidationError(f"job document is missing {exc.args[0]!r}") from None
        except (ValueError, TypeError) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError(f"job document is malformed: {exc}") from None
