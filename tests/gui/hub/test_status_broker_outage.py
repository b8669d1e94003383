"""The status bar during a broker outage: a real hub on the project's mosquitto,
a real simulated fleet and the real status widget fed through the live feed.
While the hub cannot hear the devices it says so instead of a stale rate, and the
devices keep the status they were last seen with (not "offline" one by one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.ports.backend import Backend
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.hub import Hub
from plugins.local.widgets.status import BLIND_TEXT, HubStatusWidget
from simulator.broker import EmbeddedBroker
from tests.chaos.rig import fleet
from tests.gui.alerts.conftest import BackendPlugin

pytestmark = pytest.mark.gui
DEVICES = 6


def test_status_bar_says_the_hub_cannot_see_the_fleet_during_a_broker_outage(
        qtbot, make_context, tmp_path: Path) -> None:
    with EmbeddedBroker(prefer="mosquitto", anonymous=True) as broker:
        store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
        bus = EventBus()
        hub = Hub(store, bus, broker.host, broker.port)
        hub.start()
        running = None
        try:
            assert hub.wait_connected(10)
            backend = Backend(name="local", registry=store.registry, alerts=store.alerts,
                              telemetry=store.telemetry, live=bus, rules=store.rules,
                              quarantine=store.quarantine, audit=store.audit)
            context = make_context(("test-backend", BackendPlugin(backend)))
            widget = HubStatusWidget(context)
            qtbot.addWidget(widget)
            running = fleet(broker.url, DEVICES, prefix="bo", interval_s=0.2)
            qtbot.waitUntil(lambda: (widget.messages_per_s or 0) > 1
                            and widget.texts()["devices"] == f"{DEVICES} online · 0 offline",
                            timeout=30_000)
            assert "msg/s" in widget.texts()["rate"]

            broker.stop()
            qtbot.waitUntil(lambda: BLIND_TEXT in widget.texts()["rate"], timeout=15_000)
            texts = widget.texts()
            assert "msg/s" not in texts["rate"], texts
            assert "cannot be heard" in widget.rate_label.toolTip()
            # The broker's Last Wills of its shutdown do not count: still as last seen.
            widget.recount()
            qtbot.waitUntil(lambda: not widget._counting, timeout=10_000)
            assert widget.texts()["devices"] == f"{DEVICES} online · 0 offline (as last seen)"

            broker.start()
            qtbot.waitUntil(lambda: "msg/s" in widget.texts()["rate"], timeout=60_000)
            assert not widget.texts()["devices"].endswith("(as last seen)")
        finally:
            if running is not None:
                running.stop()
            hub.stop(timeout_s=5)
            store.close()
