"""The OTA job document devices parse, and the code-signing primitives."""

from __future__ import annotations

import hashlib

import pytest

from core.crypto import codesign
from core.errors import ValidationError
from core.model import Firmware, SemVer
from core.protocol.ota import (
    OtaFailure,
    OtaJobDocument,
    placeholder_target,
    presigned_placeholder,
)

IMAGE = b"\x7fELF pump firmware" * 64


def _doc() -> tuple[OtaJobDocument, codesign.PrivateKey]:
    key = codesign.generate_key()
    fw = Firmware(SemVer.parse("2.1.0"), "pump", len(IMAGE), hashlib.sha256(IMAGE).hexdigest(),
                  signature=codesign.sign(key, IMAGE), key_id=codesign.key_id(key))
    url = presigned_placeholder(f"firmware/{fw.firmware_id}")
    return OtaJobDocument.for_firmware(fw, key_id=fw.key_id, url=url), key


def test_round_trip_and_signature() -> None:
    doc, key = _doc()
    parsed = OtaJobDocument.parse(doc.to_json())
    assert parsed == doc
    assert placeholder_target(parsed.url) == "firmware/pump@2.1.0"
    assert placeholder_target("https://example.com/x") is None
    public = codesign.load_public_pem(codesign.public_pem(key))
    assert codesign.verify(public, IMAGE, parsed.signature)
    assert not codesign.verify(public, IMAGE[:-1], parsed.signature)
    assert not codesign.verify(public, IMAGE, b"garbage")
    other = codesign.generate_key()
    assert not codesign.verify(other.public_key(), IMAGE, parsed.signature)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.update(operation="reboot"), "not an 'ota-update'"),
    (lambda d: d.pop("firmware"), "no 'firmware'"),
    (lambda d: d["firmware"].pop("sha256"), "missing 'sha256'"),
    (lambda d: d["firmware"].update(size=0), "size"),
    (lambda d: d["firmware"].update(size=True), "size"),
    (lambda d: d["firmware"].update(sha256="abc"), "64 hex"),
    (lambda d: d["firmware"].update(signatureAlgorithm="RSA"), "signatureAlgorithm"),
    (lambda d: d["firmware"].update(signature="***"), "malformed"),
    (lambda d: d["firmware"].update(version="one"), "version"),
    (lambda d: d.update(url=""), "url"),
])
def test_bad_documents_name_the_field(mutate, message: str) -> None:
    doc, _ = _doc()
    raw = doc.to_json()
    mutate(raw)
    with pytest.raises(ValidationError, match=message):
        OtaJobDocument.parse(raw)


def test_unsigned_firmware_has_no_document() -> None:
    fw = Firmware(SemVer.parse("1.0.0"), "pump", 3, hashlib.sha256(b"abc").hexdigest())
    with pytest.raises(ValidationError, match="not signed"):
        OtaJobDocument.for_firmware(fw, key_id="", url="u")


def test_rejections_and_failures_are_told_apart() -> None:
    assert OtaFailure.BAD_SIGNATURE.is_rejection and OtaFailure.DOWNGRADE.is_rejection
    assert not OtaFailure.TRUNCATED.is_rejection and not OtaFailure.SELFTEST_FAILED.is_rejection


def test_key_files_reject_other_curves() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(ValidationError, match="P-256"):
        codesign.load_public_pem(codesign.public_pem(p384))
    with pytest.raises(ValidationError, match="not a PEM"):
        codesign.load_public_pem(b"hello")


def test_manifest_is_canonical_signed_bytes_carried_verbatim() -> None:
    import dataclasses

    from core.protocol.ota import OtaManifest, SignedManifest, sign_manifest

    doc, key = _doc()
    manifest = doc.manifest_for(key_id=codesign.key_id(key), issued_at=1_700_000_000,
                                validity_s=3600)
    payload = manifest.canonical()
    assert payload.startswith(b'{"allowDowngrade":false,"deviceType":"pump","expires":1700003600')
    assert OtaManifest.parse(payload) == manifest
    signed = sign_manifest(manifest, lambda b: (codesign.sign(key, b), codesign.key_id(key)))
    full = dataclasses.replace(doc, manifest=signed)
    parsed = OtaJobDocument.parse(full.to_json())
    assert parsed.manifest == signed and parsed.manifest.manifest() == manifest
    assert codesign.verify(key.public_key(), parsed.manifest.payload, parsed.manifest.signature)
    other = codesign.generate_key()
    with pytest.raises(ValidationError, match="names key"):
        sign_manifest(manifest, lambda b: (codesign.sign(other, b), codesign.key_id(other)))
    with pytest.raises(ValidationError, match="manifest is missing 'payload'"):
        SignedManifest.parse({"signatureAlgorithm": "ECDSA-P256-SHA256"})


@pytest.mark.parametrize(("payload", "message"), [
    (b"[1]", "not a 'smartiot-ota-manifest/1'"),
    (b"{" * 5000, "over 4096"),
    (b"not json", "not JSON"),
    (b'{"format":"smartiot-ota-manifest/1","size":true,"issuedAt":1,"expires":2}',
     "size True is not"),
    (b'{"format":"smartiot-ota-manifest/1"}', "missing 'size'"),
])
def test_bad_manifests_name_the_problem(payload: bytes, message: str) -> None:
    from core.protocol.ota import OtaManifest

    with pytest.raises(ValidationError, match=message):
        OtaManifest.parse(payload)
