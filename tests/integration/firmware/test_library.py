"""The firmware library with a real store, the real secrets store and real ECDSA keys."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from core import secrets
from core.crypto import codesign
from core.crypto.keystore import KEYRING_NAME, CodeSigningKeys
from core.errors import PermissionDenied, SmartIotError, ValidationError
from core.model.roles import Actor, Role
from core.ports.fleet_api import FirmwareApi
from core.store import Store
from tests.integration.firmware.sessions import fleet_api


def test_first_import_creates_an_encrypted_key_and_signs(
    library: FirmwareApi, keys: CodeSigningKeys, tmp_path: Path
) -> None:
    image = os.urandom(300_000)
    (tmp_path / "fw.bin").write_bytes(image)
    seen: list[tuple[int, int]] = []
    fw = library.import_file(tmp_path / "fw.bin", version="1.2.0", device_type="pump",
                             release_notes="fixes", progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (300_000, 300_000)
    assert fw.is_signed and fw.key_id == codesign.key_id(keys.signing_key())
    public = codesign.load_public_pem(keys.public_pem())
    assert codesign.verify(public, image, fw.signature or b"")
    assert not codesign.verify(public, image + b"x", fw.signature or b"")
    # The private key is encrypted, owner-only, and its passphrase is in the secrets
    # store: on this keyring-less machine the encrypted file, never beside it in clear.
    pem = keys.private_path.read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in pem
    assert stat.S_IMODE(keys.private_path.stat().st_mode) == 0o600
    passphrase = secrets.get_secret(KEYRING_NAME)
    assert passphrase and passphrase.encode() not in pem
    assert "encrypted file" in secrets.describe_backend()
    for path in keys.directory.parent.rglob("*"):
        if path.is_file():
            assert passphrase.encode() not in path.read_bytes(), path
    # A second console (new object) loads the same key through the keyring.
    again = CodeSigningKeys(keys.directory)
    assert codesign.key_id(again.signing_key()) == fw.key_id
    assert library.verify(fw.firmware_id).ok


def test_wrong_passphrase_is_a_clear_error_without_secrets(
    keys: CodeSigningKeys, file_keyring: Path
) -> None:
    keys.signing_key()
    secrets.set_secret(KEYRING_NAME, "not-the-passphrase")
    with pytest.raises(ValidationError, match="could not be decrypted") as info:
        CodeSigningKeys(keys.directory).signing_key()
    assert "not-the-passphrase" not in str(info.value)


def test_missing_passphrase_names_the_fix(keys: CodeSigningKeys) -> None:
    keys.signing_key()
    secrets.delete_secret(KEYRING_NAME)
    with pytest.raises(SmartIotError, match="SMARTIOT_CODESIGN_PASSPHRASE"):
        CodeSigningKeys(keys.directory).signing_key()


def test_duplicates_and_downgrades_are_refused(library: FirmwareApi) -> None:
    library.import_bytes(b"v2" * 100, version="2.0.0", device_type="pump")
    with pytest.raises(ValidationError, match="already in the library"):
        library.import_bytes(b"other", version="2.0.0", device_type="pump")
    with pytest.raises(ValidationError, match=r"older than 2\.0\.0.*--allow-downgrade"):
        library.import_bytes(b"v1" * 100, version="1.9.9", device_type="pump")
    old = library.import_bytes(b"v1" * 100, version="1.9.9", device_type="pump",
                               allow_downgrade=True)
    assert str(old.version) == "1.9.9"
    # Another device type has its own version line.
    library.import_bytes(b"env", version="1.0.0", device_type="environmental")
    with pytest.raises(ValidationError, match="empty"):
        library.import_bytes(b"", version="3.0.0", device_type="pump")
    with pytest.raises(ValidationError, match=r"semantic|version"):
        library.import_bytes(b"x", version="v3", device_type="pump")


def test_vendor_signature_must_verify_against_a_trusted_key(
    library: FirmwareApi, keys: CodeSigningKeys
) -> None:
    image = b"vendor image" * 1000
    rogue = codesign.generate_key()
    with pytest.raises(ValidationError, match="does not verify against any trusted"):
        library.import_bytes(image, version="5.0.0", device_type="pump",
                             signature=codesign.sign(rogue, image))
    # A previous key kept under trusted/ still verifies after a rotation.
    (keys.directory / "trusted").mkdir(parents=True)
    (keys.directory / "trusted" / "vendor.pem").write_bytes(codesign.public_pem(rogue))
    fw = library.import_bytes(image, version="5.0.0", device_type="pump",
                              signature=codesign.sign(rogue, image))
    assert fw.key_id == codesign.key_id(rogue)
    assert library.verify(fw.firmware_id).ok


def test_verify_detects_a_damaged_image(library: FirmwareApi, store: Store) -> None:
    fw = library.import_bytes(b"good image" * 50, version="1.0.1", device_type="pump")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE firmware_images SET data = ? WHERE firmware_id = ?",
                             (b"evil image" * 50, fw.firmware_id))
    report = library.verify(fw.firmware_id)
    assert not report.ok and not report.signature_ok and not report.sha256_ok
    assert "does NOT verify" in report.message


def test_roles_are_enforced_in_the_library(store: Store, keys: CodeSigningKeys) -> None:
    for role in (Role.TECHNICIAN, Role.SUPPORT):
        lib = fleet_api(store, keys, Actor("tom", role)).firmware
        with pytest.raises(PermissionDenied, match="may not import firmware"):
            lib.import_bytes(b"x", version="1.0.0", device_type="pump")
    assert store.firmware.list() == []


def test_version_distribution_and_audit(library: FirmwareApi, store: Store) -> None:
    dist = library.version_distribution()
    assert dist["pump"] == {"1.0.0": 10}
    assert dist["environmental"] == {"3.1.0": 4}
    fw = library.import_bytes(b"abc" * 10, version="1.1.0", device_type="pump")
    library.delete(fw.firmware_id)
    actions = [(e.actor, e.action, e.subject) for e in store.audit.entries()]
    assert ("erin", "firmware.import", "pump@1.1.0") in actions
    assert ("erin", "firmware.delete", "pump@1.1.0") in actions
    assert store.audit.verify() is None
