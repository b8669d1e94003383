"""Firmware fixtures: a real SQLite store, a real file keyring, real keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.crypto.keystore import CodeSigningKeys
from core.model import Device, DeviceStatus
from core.model.roles import Actor, Role
from core.store import Store
from plugins.firmware.library import FirmwareLibrary


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """keyrings.alt's plaintext file keyring in a temp dir: a real keyring
    backend (the same API calls as GNOME Keyring) on a headless machine."""
    home = tmp_path / "xdg"
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    monkeypatch.delenv("SMARTIOT_CODESIGN_PASSPHRASE", raising=False)
    return home


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    s.registry.upsert_many(
        [Device(f"pump-{i:03d}", device_type="pump", firmware_version="1.0.0",
                status=DeviceStatus.ONLINE if i % 2 else DeviceStatus.OFFLINE,
                tags=frozenset({"north"} if i < 5 else {"south"}))
         for i in range(10)]
        + [Device(f"env-{i:03d}", device_type="environmental", firmware_version="3.1.0")
           for i in range(4)]
    )
    yield s
    s.close()


@pytest.fixture
def keys(tmp_path: Path, file_keyring: Path) -> CodeSigningKeys:
    return CodeSigningKeys(tmp_path / "codesign")


@pytest.fixture
def engineer() -> Actor:
    return Actor("erin", Role.ENGINEER)


@pytest.fixture
def library(store: Store, keys: CodeSigningKeys, engineer: Actor) -> FirmwareLibrary:
    return FirmwareLibrary(store.firmware, keys, engineer, registry=store.registry,
                           deployments=store.deployments, audit=store.audit)
