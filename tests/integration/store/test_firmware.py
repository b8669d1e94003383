from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from core.errors import NotFound, ValidationError
from core.model import Firmware, SemVer
from core.store import Store


def _fw(
    version: str, device_type: str = "pump", payload: bytes | None = None
) -> tuple[Firmware, bytes]:
    image = payload if payload is not None else f"image {device_type} {version}".encode() * 50
    fw = Firmware(
        version=SemVer.parse(version),
        device_type=device_type,
        size=len(image),
        sha256=hashlib.sha256(image).hexdigest(),
        signature=b"\x00\x01sig\xff",
        release_notes=f"notes for {version}",
        created_at=datetime(2024, 7, 1, tzinfo=UTC),
    )
    return fw, image


def test_firmware_round_trip_including_build_metadata(store: Store) -> None:
    fw, image = _fw("2.1.0-rc.1+build.7")
    store.firmware.add(fw, image)
    got = store.firmware.get("pump", SemVer.parse("2.1.0-rc.1"))
    assert got == fw
    assert str(got.version) == "2.1.0-rc.1+build.7"
    assert got.signature == fw.signature
    assert store.firmware.read_image("pump", fw.version) == image


def test_duplicate_version_is_rejected_even_with_other_build(store: Store) -> None:
    fw, image = _fw("1.0.0+a")
    store.firmware.add(fw, image)
    other, other_image = _fw("1.0.0+b", payload=b"different bytes")
    with pytest.raises(ValidationError, match="already"):
        store.firmware.add(other, other_image)
    # Same version for another device type is a different image.
    store.firmware.add(*_fw("1.0.0", device_type="sensor"))


def test_image_must_match_metadata(store: Store) -> None:
    fw, image = _fw("1.0.0")
    with pytest.raises(ValidationError, match="SHA-256"):
        store.firmware.add(fw, image[:-1] + b"X")
    with pytest.raises(ValidationError, match="bytes"):
        store.firmware.add(fw, image + b"!")
    assert store.firmware.list() == []


def test_list_orders_by_semver_and_delete(store: Store) -> None:
    for v in ("1.0.0", "1.0.0-rc.10", "1.0.0-rc.2", "0.9.1", "1.10.0", "1.2.0"):
        store.firmware.add(*_fw(v))
    store.firmware.add(*_fw("3.0.0", device_type="sensor"))
    listed = [str(f.version) for f in store.firmware.list("pump")]
    assert listed == ["0.9.1", "1.0.0-rc.2", "1.0.0-rc.10", "1.0.0", "1.2.0", "1.10.0"]
    assert len(store.firmware.list()) == 7

    store.firmware.delete("pump", SemVer.parse("1.2.0"))
    with pytest.raises(NotFound):
        store.firmware.get("pump", SemVer.parse("1.2.0"))
    with pytest.raises(NotFound):
        store.firmware.read_image("pump", SemVer.parse("1.2.0"))
    with pytest.raises(NotFound):
        store.firmware.delete("pump", SemVer.parse("1.2.0"))
    assert len(store.firmware.list("pump")) == 5
