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
