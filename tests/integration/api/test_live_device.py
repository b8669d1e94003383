"""Commands and desired state through the REST API reach a real device: a
simulated pump on a private mosquitto, the hub answering shadow requests, and
the API's backend acting as one more console on the broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from core.crypto.keystore import CodeSigningKeys
from core.model.roles import Role
from core.services.event_bus import EventBus
from core.store import Store
from core.store.preferences import SqlPreferenceStore
from plugins.api.app import make_handler
from plugins.api.auth import TokenSigner
from plugins.api.wiring import build_api_services
from plugins.api.wsgi import ApiWsgiApp, serve, serve_in_thread
from plugins.local.hub.clients import ConsoleClient, MqttCommandChannel, MqttShadowService
from plugins.local.hub.hub import Hub
from plugins.local.hub.mqtt_link import MqttLink
from simulator.api import RunningFleet
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.integration.api.conftest import Client, backend_over
from tests.integration.hub.conftest import wait_until


@pytest.fixture
def live_api(mosquitto_broker, tmp_path: Path) -> Iterator[tuple[Client, Store]]:
    store = Store.open(f"sqlite:///{tmp_path / 'live.db'}")
    bus = EventBus()
    hub = Hub(store, bus, mosquitto_broker.host, mosquitto_broker.port)
    hub.start()
    fleet = client = server = None
    try:
        assert hub.wait_connected(10)

        def link(filters, on_message):  # type: ignore[no-untyped-def]
            return MqttLink(mosquitto_broker.host, mosquitto_broker.port,
                            client_id=f"api-{uuid.uuid4().hex[:8]}", filters=filters,
                            on_message=on_message)

        client = ConsoleClient(link, bus)
        client.commands = MqttCommandChannel(client, store.commands, store.registry, user="api")
        client.shadows = MqttShadowService(client, store.shadows)
        client.start()
        fleet = RunningFleet(Scenario("api", (DeviceGroup(
            "pumps", "pump", 1, interval_s=1.0, id_prefix="apipump"),)),
            broker_url=mosquitto_broker.url, client_id_prefix="api-").start()
        wait_until(lambda: store.registry.find("apipump-00000") is not None, timeout=60,
                   message="the simulated pump never reached the registry")
        backend = replace(backend_over(store), commands=client.commands, shadows=client.shadows)
        services = build_api_services(backend, signing_keys=CodeSigningKeys(tmp_path / "keys"),
                                      preferences=SqlPreferenceStore(store.engine))
        tokens = TokenSigner.from_dir(tmp_path / "api")
        server = serve(ApiWsgiApp(make_handler(lambda: services), tokens), "127.0.0.1", 0)
        serve_in_thread(server)
        yield Client(f"http://127.0.0.1:{server.server_port}", tokens), store
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        for part in (fleet, client, hub):
            if part is not None:
                part.stop()
        store.close()


def test_command_and_desired_state_reach_the_device(live_api) -> None:
    client, store = live_api
    device = "apipump-00000"
    ping = client.call("POST", f"/devices/{device}/commands",
                       {"command": "ping", "timeout_s": 30}, role=Role.TECHNICIAN)
    assert ping.status == 200, ping.body
    assert ping.data["outcome"] == "ok"
    assert store.commands.get(ping.data["request_id"]).device_id == device

    first = client.call("GET", f"/devices/{device}/shadow", role=Role.SUPPORT)
    assert first.status == 200, first.body
    version = first.data["version"]
    changed = client.call("PUT", f"/devices/{device}/shadow", {"desired": {"interval": 2}},
                          role=Role.ENGINEER, headers={"If-Match": f'"{version}"'})
    assert changed.status == 200, changed.body
    assert changed.data["desired"]["interval"] == 2
    stale = client.call("PUT", f"/devices/{device}/shadow", {"desired": {"interval": 3}},
                        role=Role.ENGINEER, headers={"If-Match": f'"{version}"'})
    assert stale.status == 409, stale.body

    def reported() -> bool:
        doc = client.call("GET", f"/devices/{device}/shadow", role=Role.SUPPORT).data
        return doc["reported"].get("interval") == 2

    wait_until(reported, timeout=60, message="the pump never reported the desired interval")
