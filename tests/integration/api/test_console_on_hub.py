"""A team console on the hub's REST API, end to end with real parts: mosquitto
with per-person accounts, `smartiot hub --api` in its own process over its
SQLite database, and a console (AppContext with the profile's api_url) in
this one. The console opens no database: it signs in over HTTP, lists the
hub's devices through HttpFleetApi, follows live telemetry on the broker with
the person's own broker login from the sign-in, and is refused by the server
what the person's role may not do."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.config import load_config
from core.context import AppContext
from core.errors import PermissionDenied
from core.model.events import TelemetryReceived
from core.model.roles import Role
from core.plugins import PluginManager
from core.protocol.payloads import Telemetry
from core.protocol.topics import telemetry_topic
from tests.integration.auth.hub_team import (  # noqa: F401  (the team fixture)
    DEVICE,
    PASSWORDS,
    HubProcess,
    Mqtt,
    Team,
    team,
)
from tests.integration.hub.conftest import wait_until


def _telemetry(device: Mqtt, seq: int) -> None:
    payload = Telemetry(DEVICE, seq, int(time.time() * 1000), {"temperature": 20.0 + seq},
                        device_type="sensor").encode()
    device.client.publish(telemetry_topic("acme", DEVICE), payload, qos=1)


def test_a_console_on_the_hub_s_api_signs_in_reads_and_follows_without_a_database(
        team: Team, tmp_path: Path) -> None:  # noqa: F811
    for user, role in (("ada", "admin"), ("sam", "support")):
        secret = PASSWORDS.get(user, "the admin secret")
        added = team.cli("users", "add", user, "--role", role, "--password-stdin",
                         stdin=secret + "\n", role="admin")
        assert added.returncode == 0, added.stderr
    hub = HubProcess(team)
    console_dir = tmp_path / "console"
    console_dir.mkdir()
    (console_dir / "config.toml").write_text(
        f'profile = "team"\n[profiles.team]\napi_url = "http://127.0.0.1:{team.api_port}"\n'
        'organization = "acme"\n')
    context = AppContext(load_config(console_dir / "config.toml", console_dir / "data", env={}),
                         PluginManager(entry_points=False, blocked=()))
    device: Mqtt | None = None
    try:
        hub.wait_serving()
        fleet_secret = team.cli("broker", "password", "--device", DEVICE).stdout.strip()
        device = Mqtt(team.broker_port, DEVICE, fleet_secret)
        assert device.connected.wait(10), device.refused
        _telemetry(device, 1)  # the hub registers the device in its database

        remote = context.remote
        assert remote is not None and not remote.resume()  # nobody signed in here yet
        actor = remote.sign_in("sam", PASSWORDS["sam"])
        assert (actor.user, actor.role, actor.organization) == ("sam", Role.SUPPORT, "acme")
        assert context.actor == actor  # the server's answer, not this machine's config
        login = remote.broker_login()
        assert login is not None and login.username == "person.sam"

        wait_until(lambda: [d.device_id for d in context.api.devices.all()] == [DEVICE], 30,
                   "the hub's device never reached the console through the API")

        seen: list[TelemetryReceived] = []
        live = context.backend.live
        assert live is not None
        live.subscribe(lambda events: seen.extend(
            e for e in events if isinstance(e, TelemetryReceived)))
        wait_until(lambda: live.connection_state() == "connected", 20,
                   "the console's live feed did not connect with the person's broker login")
        seq = 2
        deadline = time.monotonic() + 20
        while not any(e.device_id == DEVICE for e in seen):
            assert time.monotonic() < deadline, "no live telemetry reached the console"
            _telemetry(device, seq)
            seq += 1
            time.sleep(0.3)

        with pytest.raises(PermissionDenied):  # refused by the server, not by a greyed button
            context.api.devices.decommission(DEVICE)
        assert not (console_dir / "data" / "smartiot.db").exists()  # the hub's alone
    finally:
        context.close()
        if device is not None:
            device.close()
        hub.stop()
