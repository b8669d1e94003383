"""A device command through the hub's REST API in the team set-up: a broker
with person accounts (real mosquitto, dynamic-security plugin), `smartiot hub
--api`, a device of `smartiot simulate`. The hub's machine has no console login
of its own on such a broker; it sends what people ask for as its commander
(smartiot.commander), after the server checked the person's role: a
technician's ping reaches the device and its answer comes back, a support
person's is refused by the server (403) and never reaches the broker."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.auth.hub_team import PASSWORDS, Team, team_broker
from tests.integration.hub.conftest import wait_until

DEVICE = "env-00000"


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    with team_broker(tmp_path, "env") as (t, printed):
        assert "smartiot.commander" in printed
        yield t


def _background(argv: list[str], env: dict[str, str], lines: list[str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env)

    def read() -> None:
        assert process.stdout is not None
        for line in iter(process.stdout.readline, ""):
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return process


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def test_a_technician_pings_a_device_through_the_hub_and_support_is_refused(
        team: Team) -> None:
    for user, role in (("ada", "admin"), ("sam", "support"), ("tim", "technician")):
        added = team.cli("users", "add", user, "--role", role, "--password-stdin",
                         stdin=PASSWORDS.get(user, "the admin secret") + "\n", role="admin")
        assert added.returncode == 0, added.stderr
    hub_lines: list[str] = []
    device_lines: list[str] = []
    hub = _background([sys.executable, "-m", "console.cli", "hub", "--status-every", "60",
                       "--api", f"127.0.0.1:{team.api_port}"], team.env, hub_lines)
    device = _background([sys.executable, "-m", "console.cli", "simulate", "--devices", "1",
                          "--type", "environmental", "--rate", "2", "--org", "acme"],
                         team.env, device_lines)
    try:
        wait_until(lambda: any("REST API on http://127.0.0.1" in x for x in hub_lines)
                   or hub.poll() is not None, 60, "the hub did not start")
        assert hub.poll() is None, "".join(hub_lines)
        tim, sam = team.login("tim"), team.login("sam")
        wait_until(lambda: team.http("GET", f"/devices/{DEVICE}",
                                     token=tim["access_token"])[0] == 200,
                   60, f"the hub never stored {DEVICE}: {device_lines[-5:]}")

        status, body = team.http("POST", f"/devices/{DEVICE}/commands", {"command": "ping"},
                                 token=tim["access_token"])
        assert status == 200, body
        assert body["data"]["outcome"] == "ok", body
        assert body["data"]["device_id"] == DEVICE

        status, body = team.http("POST", f"/devices/{DEVICE}/commands", {"command": "ping"},
                                 token=sam["access_token"])
        assert status == 403 and body["error"]["code"] == "FORBIDDEN", body
    finally:
        _stop(device)
        _stop(hub)
    trail = team.cli("audit", "list", "--json", role="admin").stdout
    assert '"device.command"' in trail
