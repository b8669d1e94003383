"""Fixtures for the alert plugin's GUI tests: a real SQLite store, the
in-process EventBus as the live feed, and the real alert widgets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.context import AppContext
from core.hookspecs import hookimpl
from core.model import Alert, Device, DeviceStatus, Severity
from core.ports.backend import Backend
from core.registrations import BackendSpec
from core.services.event_bus import EventBus
from core.store import Store


class BackendPlugin:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @hookimpl
    def smartiot_register_backends(self, register: Callable[[BackendSpec], None]) -> None:
        register(BackendSpec("local", "test store", lambda _ctx: self.backend))


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fleet.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url)
    yield s
    s.close()


@pytest.fixture
def bus() -> EventBus:
    feed = EventBus()
    feed.set_connection_state("connected")
    return feed


@pytest.fixture
def backend(store: Store, bus: EventBus) -> Backend:
    b = Backend(name="local", registry=store.registry, alerts=store.alerts,
                telemetry=store.telemetry, live=bus, rules=store.rules,
                quarantine=store.quarantine, audit=store.audit)
    return b


@pytest.fixture
def context(make_context: Callable[..., AppContext], backend: Backend) -> AppContext:
    return make_context(("test-backend", BackendPlugin(backend)))


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def seed(store: Store, now: datetime) -> Callable[..., Alert]:
    """Adds an alert (and its device) to the store; keyword overrides."""
    known: set[str] = set()

    def add(device_id: str = "pump-00001", severity: Severity = Severity.WARNING,
            minutes_ago: float = 5, **kwargs: Any) -> Alert:
        if device_id not in known:
            store.registry.upsert(Device(device_id, device_type="pump",
                                         status=DeviceStatus.ONLINE))
            known.add(device_id)
        kwargs.setdefault("rule_id", "temperature-high")
        kwargs.setdefault("message", "temperature above 70 °C")
        kwargs.setdefault("value", 74.5)
        created = now - timedelta(minutes=minutes_ago)
        alert = Alert(device_id, severity=severity, created_at=created, updated_at=created,
                      **kwargs)
        store.alerts.add(alert)
        return alert

    return add


@pytest.fixture
def alerts_page(qtbot: Any, context: AppContext) -> Callable[[], Any]:
    from plugins.alerts.widgets.alerts_page import AlertsPage

    def make() -> AlertsPage:
        page = AlertsPage(context)
        qtbot.addWidget(page)
        page.resize(1200, 700)
        with qtbot.waitSignal(page.loaded, timeout=15_000):
            pass
        return page

    return make
