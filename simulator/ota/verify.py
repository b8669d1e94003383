"""What a device checks before it takes an image: the signed manifest first
(nothing in a job document counts unless the manifest vouches for it), then
the document against it (nothing to download for a wrong type, a downgrade or
an untrusted key), then the bytes.

Trust comes from the keys the device was provisioned with, looked up by the
manifest's and the document's ``keyId``; the document never supplies a key.
A device may be provisioned from key files it re-reads (the local demo fleet
follows the console's ``codesign`` directory), so a key created or revoked
after the fleet started is trusted or distrusted from the next job on.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.crypto import codesign
from core.errors import ValidationError
from core.model.semver import SemVer
from core.protocol.ota import OtaFailure, OtaJobDocument, OtaManifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    reason: OtaFailure
    message: str


class TrustStore:
    """The code-signing public keys a device trusts, by key id: fixed ones plus
    those in watched files or directories (``*.pem`` public keys), re-read
    whenever a file there is added, changed or removed."""

    def __init__(self, keys: Iterable[codesign.PublicKey] = (),
                 watch: Sequence[Path] = ()) -> None:
        self._fixed: dict[str, codesign.PublicKey] = {codesign.key_id(k): k for k in keys}
        self._watch = tuple(Path(p) for p in watch)
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[str, int, int], ...] = ()
        self._watched: dict[str, codesign.PublicKey] = {}

    @classmethod
    def from_pems(cls, pems: Iterable[bytes | str], watch: Sequence[Path] = ()) -> TrustStore:
        return cls((codesign.load_public_pem(p.encode() if isinstance(p, str) else p)
                    for p in pems), watch)

    def _files(self) -> list[Path]:
        files: list[Path] = []
        for path in self._watch:
            if path.is_dir():
                files.extend(sorted(path.glob("*.pem")))
            elif path.is_file():
                files.append(path)
        return files

    def _refresh(self) -> dict[str, codesign.PublicKey]:
        if not self._watch:
            return self._fixed
        with self._lock:
            stamp: list[tuple[str, int, int]] = []
            files = self._files()
            for f in files:
                try:
                    st = f.stat()
                except OSError:
                    continue
                stamp.append((str(f), st.st_mtime_ns, st.st_size))
            if tuple(stamp) != self._stamp:
                keys: dict[str, codesign.PublicKey] = {}
                for f in files:
                    try:
                        key = codesign.load_public_pem(f.read_bytes())
                    except (OSError, ValidationError):
                        continue  # a private key or a stray file: not a trust anchor
                    keys[codesign.key_id(key)] = key
                self._watched, self._stamp = keys, tuple(stamp)
            return {**self._watched, **self._fixed}

    def get(self, key_id: str) -> codesign.PublicKey | None:
        return self._refresh().get(key_id)

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._refresh())

    def describe(self) -> str:
        ids = sorted(self.key_ids)
        return f"it trusts {', '.join(ids)}" if ids else "it trusts no key"

    def __len__(self) -> int:
        return len(self._refresh())


def parse_document(doc: object) -> OtaJobDocument | Verdict:
    try:
        return OtaJobDocument.parse(doc)
    except ValidationError as exc:
        return Verdict(OtaFailure.BAD_DOCUMENT, str(exc))


def check_manifest(doc: OtaJobDocument, trust: TrustStore, *, now: float,
                   check_expiry: bool = True) -> OtaManifest | Verdict:
    """The signed manifest, verified, and the document checked against it.

    The document's unsigned fields must say exactly what the manifest says: a
    device acts only on signed instructions, and a disagreement means someone
    edited the document (a forged or tampered job)."""
    signed = doc.manifest
    if signed is None:
        return Verdict(OtaFailure.BAD_DOCUMENT,
                       "the job document has no signed manifest; unsigned instructions are "
                       "refused")
    key = trust.get(signed.key_id)
    if key is None:
        return Verdict(OtaFailure.UNTRUSTED_KEY,
                       f"manifest signed by key {signed.key_id}, which this device does not "
                       f"trust ({trust.describe()})")
    if not codesign.verify(key, signed.payload, signed.signature):
        return Verdict(OtaFailure.BAD_SIGNATURE,
                       f"the manifest's signature does not verify with key {signed.key_id}")
    try:
        manifest = signed.manifest()
    except ValidationError as exc:
        return Verdict(OtaFailure.BAD_DOCUMENT, f"signed manifest unreadable: {exc}")
    if manifest.key_id != signed.key_id:
        return Verdict(OtaFailure.BAD_SIGNATURE,
                       f"the manifest names key {manifest.key_id} but {signed.key_id} signed it")
    if doc.key_id != manifest.bound_image_key_id:
        # Unbound, the document's keyId would let whoever edits it pick which trusted
        # key the image's signature is checked with.
        return Verdict(OtaFailure.BAD_DOCUMENT,
                       f"the job document says keyId {doc.key_id!r} but its signed manifest "
                       f"says {manifest.bound_image_key_id!r}")
    claims = (("deviceType", doc.device_type, manifest.device_type),
              ("version", str(doc.version), str(manifest.version)),
              ("size", doc.size, manifest.size),
              ("sha256", doc.sha256, manifest.sha256),
              ("allowDowngrade", doc.allow_downgrade, manifest.allow_downgrade))
    for name, said, signed_value in claims:
        if said != signed_value:
            return Verdict(OtaFailure.BAD_DOCUMENT,
                           f"the job document says {name} {said!r} but its signed manifest "
                           f"says {signed_value!r}")
    if check_expiry and now > manifest.expires:
        return Verdict(OtaFailure.EXPIRED_MANIFEST,
                       f"the manifest expired {int(now - manifest.expires)} s ago (for "
                       f"{manifest.device_type} {manifest.version}); a replayed or stale job")
    return manifest


def check_document(doc: OtaJobDocument, *, device_type: str, running_version: str,
                   trust: TrustStore, manifest: OtaManifest | None = None) -> Verdict | None:
    """Rejections that need no download: None if the image may be fetched.
    ``manifest`` is the verified manifest (its minimum version applies)."""
    if doc.device_type != device_type:
        return Verdict(OtaFailure.WRONG_DEVICE_TYPE,
                       f"image is for {doc.device_type!r}, this device is {device_type!r}")
    if trust.get(doc.key_id) is None:
        return Verdict(OtaFailure.UNTRUSTED_KEY,
                       f"image signed by key {doc.key_id}, which this device does not trust "
                       f"({trust.describe()})")
    try:
        current = SemVer.parse(running_version)
    except ValidationError:
        return None  # an unversioned image cannot be ordered; the signature decides
    if manifest is not None and manifest.min_version is not None and (
            current < manifest.min_version):
        return Verdict(OtaFailure.DOWNGRADE,
                       f"{manifest.version} installs only over {manifest.min_version} or newer; "
                       f"this device runs {current}")
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
        return Verdict(OtaFailure.UNTRUSTED_KEY,
                       f"image signed by key {doc.key_id}, which this device does not trust "
                       f"({trust.describe()})")
    if not codesign.verify(key, data, doc.signature):
        return Verdict(OtaFailure.BAD_SIGNATURE,
                       f"signature does not verify with key {doc.key_id}")
    return None
