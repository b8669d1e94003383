"""Firmware fixtures: a real SQLite store, a machine without an OS keyring (the
encrypted secrets file in a temp data dir), real keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.crypto.keystore import CodeSigningKeys
from core.model import Device, DeviceStatus
from core.model.roles import Actor, Role
from core.ports.fleet_api import FirmwareApi
from core.store import Store
from tests.integration.firmware.sessions import fleet_api


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A headless machine: no OS keyring (keyring's ``fail`` backend), so secrets go
    to the encrypted file in a fresh data dir, which is returned."""
    data = tmp_path / "data"
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("SMARTIOT_DATA_DIR", str(data))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SMARTIOT_CODESIGN_PASSPHRASE", raising=False)
    monkeypatch.delenv("SMARTIOT_SECRETS_PASSPHRASE", raising=False)
    return data


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
def library(store: Store, keys: CodeSigningKeys, engineer: Actor) -> FirmwareApi:
    return fleet_api(store, keys, engineer).firmware
