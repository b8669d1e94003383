"""Fixtures for the firmware page's GUI tests: a real SQLite store with the
firmware library and the deployment service, a real code-signing key (its
passphrase in a plaintext keyring under tmp_path), and registered devices."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.config import Config
from core.context import AppContext
from core.hookspecs import hookimpl
from core.model import Deployment, Device, DeviceStatus, Firmware
from core.model.roles import Actor, Role
from core.model.rollout import AbortCriterion, FailureType, JobConfig, RolloutConfig
from core.ports.backend import Backend
from core.ports.fleet_api import FirmwareApi
from core.ports.fleet_api.deployments import TargetSpec
from core.registrations import BackendSpec
from core.store import Store

WAIT = 20_000


def dispose(widget: Any) -> None:
    """Close and delete a top-level widget now, not at some later event loop.

    pytest-qt's ``deleteLater`` runs only once an event loop picks it up, so a
    parentless wizard could outlive its test and be re-styled by the next
    test's window while half torn down (a segfault in ``setStyleSheet``)."""
    from PySide6.QtCore import QCoreApplication, QEvent

    widget.close()
    widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


class BackendPlugin:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @hookimpl
    def smartiot_register_backends(self, register: Callable[[BackendSpec], None]) -> None:
        register(BackendSpec("local", "test store", lambda _ctx: self.backend))


@pytest.fixture
def owned(request: pytest.FixtureRequest) -> Callable[[Any], Any]:
    """Registers a top-level widget to be disposed of when the test ends."""

    def own(widget: Any) -> Any:
        request.addfinalizer(lambda: dispose(widget))
        return widget

    return own


@pytest.fixture(autouse=True)
def plaintext_keyring(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    import keyring
    import keyring.core

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SMARTIOT_CODESIGN_PASSPHRASE", raising=False)
    before = keyring.get_keyring()
    keyring.core.init_backend()  # honour the variables even if keyring was used before
    yield
    keyring.set_keyring(before)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'fleet.db'}")
    yield s
    s.close()


@pytest.fixture
def backend(store: Store) -> Backend:
    return Backend(name="local", registry=store.registry, alerts=store.alerts,
                   telemetry=store.telemetry, firmware=store.firmware,
                   deployments=store.deployments, audit=store.audit,
                   trusted_keys=store.trusted_keys)


@pytest.fixture
def role_context(make_context: Callable[..., AppContext], backend: Backend, config: Config
                 ) -> Callable[[str, str], AppContext]:
    def make(role: str = "engineer", user: str = "erin") -> AppContext:
        return make_context(("test-backend", BackendPlugin(backend)),
                            config_=dataclasses.replace(config, role=role),
                            actor=Actor(user, Role.parse(role)))

    return make


@pytest.fixture
def context(role_context: Callable[[str, str], AppContext]) -> AppContext:
    return role_context("engineer", "erin")


@pytest.fixture
def technician(role_context: Callable[[str, str], AppContext]) -> AppContext:
    return role_context("technician", "tess")


def pumps(n: int, version: str = "1.0.0", start: int = 0, **kwargs: Any) -> list[Device]:
    return [Device(f"pump-{i:05d}", device_type="pump", status=DeviceStatus.ONLINE,
                   firmware_version=version, tags=frozenset({"hall-a" if i % 2 else "hall-b"}),
                   **kwargs) for i in range(start, start + n)]


@pytest.fixture
def fleet(store: Store) -> list[Device]:
    """30 pumps (25 on 1.0.0, 5 on 2.1.0) and 8 environmental sensors."""
    devices = pumps(25) + pumps(5, "2.1.0", start=25) + [
        Device(f"env-{i:05d}", device_type="environmental", status=DeviceStatus.ONLINE,
               firmware_version="3.2.0") for i in range(8)]
    store.registry.upsert_many(devices)
    return devices


@pytest.fixture
def library(context: AppContext) -> FirmwareApi:
    return context.api.firmware


@pytest.fixture
def images(library: FirmwareApi) -> dict[str, Firmware]:
    """pump 1.0.0 and 2.0.0, environmental 3.3.0; all signed by the console's key."""
    out = {}
    for device_type, version, size in (("pump", "1.0.0", 4096), ("pump", "2.0.0", 8192),
                                       ("environmental", "3.3.0", 2048)):
        fw = library.import_bytes(os.urandom(size), version=version, device_type=device_type,
                                  release_notes=f"{device_type} {version}\nfixes")
        out[fw.firmware_id] = fw
    return out


@pytest.fixture
def make_deployment(context: AppContext, fleet: list[Device], images: dict[str, Firmware]
                    ) -> Callable[..., Deployment]:
    def make(device_ids: list[str] | None = None, config: JobConfig | None = None,
             firmware_id: str = "pump@2.0.0") -> Deployment:
        ids = device_ids or [d.device_id for d in fleet if d.device_type == "pump"][:20]
        config = config or JobConfig(
            RolloutConfig(maximum_per_minute=10),
            (AbortCriterion(FailureType.FAILED, 50.0, 10),), 30)
        return context.api.deployments.create(
            firmware_id, TargetSpec("list", device_ids=tuple(ids)), config,
            description="spring update")

    return make
