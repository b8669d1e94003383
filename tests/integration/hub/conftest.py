"""A real hub on a private mosquitto with a real SQLite store."""

from __future__ import annotations

import time

import pytest

from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.hub import Hub


class EventLog:
    def __init__(self, bus: EventBus) -> None:
        self.events = []
        bus.subscribe(self.events.extend)

    def of(self, event_type):
        return [e for e in list(self.events) if isinstance(e, event_type)]


def wait_until(predicate, timeout=15.0, message="condition not met in time"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(message)


@pytest.fixture
def hub_setup(mosquitto_broker, tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    bus = EventBus()
    log = EventLog(bus)
    hub = Hub(store, bus, mosquitto_broker.host, mosquitto_broker.port)
    hub.start()
    assert hub.wait_subscribed(10)
    yield hub, store, log
    hub.stop()
    store.close()
