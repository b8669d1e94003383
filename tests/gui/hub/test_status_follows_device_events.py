"""The status bar's device counts follow the devices' status events at once,
not the next poll of the backend: on AWS the live feed hears a device come
online before the API's table says so (IoT Core → Kinesis → the stream consumer
→ DynamoDB), so right after sign-in the bar said "0 online · 8 offline" for
15 s beside a devices page whose rows were already online. Here a real store and
event bus stand in for a backend that lags its feed: the feed says online while
the registry still says offline. Once the registry catches up, the recount
takes over again; and when it says otherwise long after the event, its word is
final."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import plugins.local.widgets.status as status_module
from core.model import Device, DeviceStatus
from core.model.events import DeviceChanged
from core.ports.backend import Backend
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.widgets.status import HubStatusWidget
from tests.gui.alerts.conftest import BackendPlugin

pytestmark = pytest.mark.gui


def test_counts_follow_device_status_events_before_the_backend_does(
        qtbot, make_context, tmp_path: Path, monkeypatch) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    bus = EventBus()
    bus.set_connection_state("connected")
    try:
        devices = [Device(f"pump-{i}", device_type="pump") for i in range(8)]
        store.registry.upsert_many(devices)
        backend = Backend(name="local", registry=store.registry, alerts=store.alerts,
                          telemetry=store.telemetry, live=bus, rules=store.rules,
                          quarantine=store.quarantine, audit=store.audit)
        widget = HubStatusWidget(make_context(("test-backend", BackendPlugin(backend))))
        qtbot.addWidget(widget)
        qtbot.waitUntil(lambda: widget.texts()["devices"] == "0 online · 8 offline",
                        timeout=10_000)
        assert widget.bridge is not None

        # the feed hears three devices come online; the backend does not know yet
        bus.publish([DeviceChanged(replace(d, status=DeviceStatus.ONLINE))
                     for d in devices[:3]])
        qtbot.waitUntil(lambda: widget.texts()["devices"] == "3 online · 5 offline",
                        timeout=5_000)
        # the recount a couple of seconds later reads the lagging registry:
        # the heard statuses still count
        qtbot.waitUntil(lambda: not widget._counting and not widget._recount_throttle
                        .isActive() and widget.counted != {}, timeout=10_000)
        widget.recount()
        qtbot.waitUntil(lambda: not widget._counting, timeout=10_000)
        assert widget.counted["pump-0"] is status_module.Health.OFFLINE
        assert widget.texts()["devices"] == "3 online · 5 offline"

        # the registry catches up: a count that agrees takes over
        store.registry.upsert_many([replace(d, status=DeviceStatus.ONLINE)
                                    for d in devices[:3]])
        widget.recount()
        qtbot.waitUntil(lambda: not widget.heard, timeout=10_000)
        assert widget.texts()["devices"] == "3 online · 5 offline"

        # a device heard offline that the backend still calls offline after the
        # trust window: the backend's word is final
        bus.publish([DeviceChanged(replace(devices[5], status=DeviceStatus.ONLINE))])
        qtbot.waitUntil(lambda: widget.texts()["devices"] == "4 online · 4 offline",
                        timeout=5_000)
        monkeypatch.setattr(status_module, "HEARD_TRUST_S", 0.0)
        qtbot.waitUntil(lambda: not widget._counting, timeout=10_000)
        widget.recount()
        qtbot.waitUntil(lambda: widget.texts()["devices"] == "3 online · 5 offline",
                        timeout=10_000)
    finally:
        store.close()
