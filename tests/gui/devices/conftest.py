"""Fixtures for the Devices page: a real SQLite store, the real EventBus as live
feed, and tiny answering CommandChannel/ShadowService ports (the hub provides
the real ones)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConcurrentModification
from core.identity import local_owner
from core.model import Device, DeviceStatus, Location
from core.model.timeutil import utcnow
from core.ports.backend import Backend
from core.ports.commands import CommandChannel, CommandOutcome, CommandResult
from core.ports.shadows import ShadowDocument, ShadowService
from core.services.event_bus import EventBus
from core.services.session import LocalFleetApi
from core.services.wiring import build_services
from core.store import Store


class AnsweringChannel(CommandChannel):
    """Answers every command at once; records what was sent."""

    def __init__(self, outcome: CommandOutcome = CommandOutcome.OK) -> None:
        self.sent: list[tuple[str, str, dict[str, Any] | None]] = []
        self.outcome = outcome
        self.lock = threading.Lock()

    def send(self, device_id: str, command: str, params: dict[str, Any] | None = None, *,
             timeout_s: float = 10.0) -> Future[CommandResult]:
        with self.lock:
            self.sent.append((device_id, command, params))
        future: Future[CommandResult] = Future()
        future.set_result(CommandResult(uuid.uuid4().hex, device_id, command, self.outcome,
                                        {"echo": command}, latency_ms=12.5))
        return future


class MemoryShadows(ShadowService):
    def __init__(self) -> None:
        self.docs: dict[str, ShadowDocument] = {}

    def get(self, device_id: str) -> ShadowDocument:
        return self.docs.get(device_id, ShadowDocument(device_id))

    def update_desired(self, device_id: str, desired: dict[str, Any], *,
                       expected_version: int | None = None) -> ShadowDocument:
        doc = self.get(device_id)
        if expected_version is not None and expected_version != doc.version:
            raise ConcurrentModification(
                f"shadow of {device_id} is at version {doc.version}, not {expected_version}")
        merged = dict(doc.desired)
        for key, value in desired.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        new = ShadowDocument(device_id, merged, dict(doc.reported), doc.version + 1, utcnow())
        self.docs[device_id] = new
        return new


def make_devices(n: int, *, now: datetime | None = None) -> list[Device]:
    now = now or datetime.now(UTC)
    kinds = ["environmental", "power_meter", "pump", "tracker"]
    statuses = [DeviceStatus.ONLINE, DeviceStatus.ONLINE, DeviceStatus.OFFLINE,
                DeviceStatus.WARNING, DeviceStatus.ERROR]
    return [
        Device(f"dev-{i:06d}", name=f"Device {i}", device_type=kinds[i % 4],
               status=statuses[i % 5], organization="north" if i % 2 else "south",
               firmware_version=["1.4.2", "1.5.0", "1.10.0"][i % 3],
               tags=frozenset({["hall-a", "hall-b", "roof"][i % 3]}),
               location=Location(52.5, 13.4, f"site {i % 7}"),
               last_seen=now - timedelta(seconds=i % 600))
        for i in range(n)
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path}/smartiot.db")
    yield s
    s.close()


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def channel() -> AnsweringChannel:
    return AnsweringChannel()


@pytest.fixture
def shadows() -> MemoryShadows:
    return MemoryShadows()


@pytest.fixture
def backend(store: Store, bus: EventBus, channel: AnsweringChannel,
            shadows: MemoryShadows) -> Backend:
    return Backend("test", registry=store.registry, alerts=store.alerts,
                   telemetry=store.telemetry, live=bus, commands=channel, shadows=shadows,
                   link_stats=store.link_stats, command_log=store.commands)


@pytest.fixture
def make_page(qtbot: Any, backend: Backend, tmp_path: Path):
    from plugins.devices.widgets.devices_page import DevicesPage

    def make(b: Backend | None = None, **kwargs: Any) -> DevicesPage:
        kwargs.setdefault("saved_filters_path", tmp_path / "config" / "saved_filters.json")
        chosen = b or backend
        api = LocalFleetApi(build_services(chosen), local_owner())
        page = DevicesPage(api=api, live=chosen.live, **kwargs)
        qtbot.addWidget(page)
        page.resize(1300, 800)
        page.show()
        qtbot.waitUntil(lambda: not page._loading, timeout=60_000)
        return page

    return make
