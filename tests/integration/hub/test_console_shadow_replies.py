"""The console hears every device's accepted shadow update; it reads the
document back and tells its views only for the devices a view shows in full
(a device's detail, where the shadow is), not for 10,000 devices nobody is
looking at. A detail opened later reads the stored document itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.model.events import FleetEvent, ShadowChanged
from core.ports.shadows import ShadowDocument
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.clients import ConsoleClient, MqttShadowService
from plugins.local.hub.mqtt_link import MqttLink


def _link(filters: Any, on_message: Any) -> MqttLink:
    """The console's real link, never started: the replies are handed to the
    shadow service as the link would hand them on."""
    return MqttLink("127.0.0.1", 1883, client_id="console-test", filters=filters,
                    on_message=on_message)


def _accepted(device_id: str) -> tuple[str, bytes]:
    return (f"$aws/things/{device_id}/shadow/update/accepted",
            json.dumps({"state": {"reported": {"interval": 5}}, "version": 2}).encode())


def test_only_focused_devices_shadow_updates_reach_the_views(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'console.db'}")
    try:
        for device in ("pump-00001", "pump-00002"):
            store.shadows.save(ShadowDocument(device, reported={"interval": 5}, version=2),
                               expected_version=None)
        bus = EventBus()
        told: list[FleetEvent] = []
        bus.subscribe(told.extend)
        client = ConsoleClient(_link, bus)
        shadows = MqttShadowService(client, store.shadows)

        unfocus = bus.focus(["pump-00001"])
        for device in ("pump-00001", "pump-00002"):
            shadows.on_reply(*_accepted(device))
        changed = [e.document.device_id for e in told if isinstance(e, ShadowChanged)]
        assert changed == ["pump-00001"]

        unfocus()
        told.clear()
        shadows.on_reply(*_accepted("pump-00001"))
        assert not [e for e in told if isinstance(e, ShadowChanged)]
    finally:
        store.close()
