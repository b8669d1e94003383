"""The status bar at fleet scale: its live link keeps only the events its labels
read (hub status, devices, alerts), so 10,000 telemetry messages a second are
dropped on the feed's thread instead of being buffered and handed to the window."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.model import Reading
from core.model.events import HubStatus, TelemetryReceived
from core.ports.backend import Backend
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.widgets.status import HubStatusWidget
from tests.gui.alerts.conftest import BackendPlugin

pytestmark = pytest.mark.gui


def test_status_widget_takes_hub_status_and_never_telemetry(qtbot, make_context,
                                                            tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    bus = EventBus()
    try:
        backend = Backend(name="local", registry=store.registry, alerts=store.alerts,
                          telemetry=store.telemetry, live=bus, rules=store.rules,
                          quarantine=store.quarantine, audit=store.audit)
        widget = HubStatusWidget(make_context(("test-backend", BackendPlugin(backend))))
        qtbot.addWidget(widget)
        qtbot.waitUntil(lambda: widget.bridge is not None, timeout=10_000)
        now = datetime.now(UTC)
        telemetry = [TelemetryReceived(f"dev-{i:05d}", (
            Reading(f"dev-{i:05d}", "temperature", now, 20.0),)) for i in range(5_000)]
        bus.publish([*telemetry, HubStatus("connected", messages_per_s=5_000.0,
                                           readings_per_s=30_000.0)])
        assert widget.bridge is not None
        assert widget.bridge.received == 1 and widget.bridge.pending() <= 1
        qtbot.waitUntil(lambda: widget.readings_per_s == 30_000.0, timeout=5_000)
        assert widget.bridge.readings_received == 0
    finally:
        store.close()
