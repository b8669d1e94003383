"""What a device checks before it takes an image: the document first (nothing
to download for a wrong type, a downgrade or an untrusted key), then the bytes.

Trust comes from the keys the device was provisioned with, looked up by the
document's ``keyId``; the document never supplies the key itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from core.crypto import codesign
from core.errors import ValidationError
from core.model.semver import SemVer
from core.protocol.ota import OtaFailure, OtaJobDocument


@dataclass(frozen=True)
class Verdict:
    reason: OtaFailure
    message: str


class TrustStore:
    """The code-signing public keys a device trusts, by key id."""

    def __init__(self, keys: Iterable[codesign.PublicKey] = ()) -> None:
        self._keys: dict[str, codesign.PublicKey] = {codesign.key_id(k): k for k in keys}

    @classmethod
    def from_pems(cls, pems: Iterable[bytes | str]) -> TrustStore:
        return cls(codesign.load_public_pem(p.encode() if isinstance(p, str) else p)
                   for p in pems)

    def get(self, key_id: str) -> codesign.PublicKey | None:
        return self._keys.get(key_id)

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def parse_document(doc: object) -> OtaJobDocument | Verdict:
    try:
        return OtaJobDocument.parse(doc)
    except ValidationError as exc:
        return Verdict(OtaFailure.BAD_DOCUMENT, str(exc))


def check_document(doc: OtaJobDocument, *, device_type: str, running_version: str,
                   trust: TrustStore) -> Verdict | None:
    """Rejections that need no download: None if the image may be fetched."""
    if doc.device_type != device_type:
        return Verdict(OtaFailure.WRONG_DEVICE_TYPE,
                       f"image is for {doc.device_type!r}, this device is {device_type!r}")
    if trust.get(doc.key_id) is None:
        return Verdict(OtaFailure.UNTRUSTED_KEY, f"key {doc.key_id} is not trusted here")
    try:
        current = SemVer.parse(running_version)
    except ValidationError:
        return None  # an unversioned image cannot be ordered; the signature decides
    if doc.version == current:
        return Verdict(OtaFailure.SAME_VERSION, f"{current} is already running")
    if doc.version < current and not doc.allow_downgrade:
        return Verdict(OtaFailure.DOWNGRADE,
                       f"{doc.version} is older than the running {current}")
    return None


def check_image(doc: OtaJobDocument, data: bytes, trust: TrustStore) -> Verdict | None:
    """Size, SHA-256, then the signature over the image bytes."""
    if len(data) < doc.size:
        return Verdict(OtaFailure.TRUNCATED, f"got {len(data)} of {doc.size} bytes")
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != doc.size or digest != doc.sha256:
        return Verdict(OtaFailure.SHA256_MISMATCH,
                       f"SHA-256 {digest[:16]}... differs from {doc.sha256[:16]}...")
    key = trust.get(doc.key_id)
    if key is None:
        return Verdict(OtaFailure.UNTRUSTED_KEY, f"key {doc.key_id} is not trusted here")
    if not codesign.verify(key, data, doc.signature):
        return Verdict(OtaFailure.BAD_SIGNATURE,
                       f"signature does not verify with key {doc.key_id}")
    return None
