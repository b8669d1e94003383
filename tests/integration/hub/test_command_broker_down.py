"""A command or desired state with the broker down: the error names the broker's
address and what to do, not paho's "Unspecified error". Real mosquitto (the
project's embedded broker), stopped under a connected console link."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import SmartIotError
from core.model import Device
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub import clients
from plugins.local.hub.clients import CLIENT_FILTERS, ConsoleClient, MqttCommandChannel
from plugins.local.hub.mqtt_link import MqttLink
from simulator.broker import EmbeddedBroker
from tests.integration.hub.conftest import wait_until


def test_a_ping_with_the_broker_down_names_the_broker_and_what_to_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clients, "CONNECT_WAIT_S", 1.0)
    with EmbeddedBroker(prefer="mosquitto", anonymous=True) as broker, \
            Store.open(f"sqlite:///{tmp_path / 'team.db'}") as store:
        store.registry.upsert(Device("pump-00003", name="Pump P4", device_type="pump"))
        client = ConsoleClient(lambda filters, on_message: MqttLink(
            broker.host, broker.port, client_id="console-test", filters=CLIENT_FILTERS,
            on_message=on_message), EventBus())
        client.start()
        channel = MqttCommandChannel(client, store.commands, store.registry, user="tom")
        client.commands = channel
        try:
            assert client.link.wait_subscribed(10)
            broker.stop()
            wait_until(lambda: client.link.state != "connected", timeout=15)
            with pytest.raises(SmartIotError) as raised:
                channel.send("pump-00003", "ping", timeout_s=1.0)
        finally:
            client.stop()
    said = str(raised.value)
    assert said.startswith("ping not sent to pump-00003: not connected to the broker at "
                           f"{broker.host}:{broker.port}"), said
    assert "Unspecified error" not in said
    assert "Check that the broker is running" in said and "try again" in said
