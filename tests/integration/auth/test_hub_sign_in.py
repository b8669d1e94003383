"""The team set-up's sign-in end to end, as docs/team.md tells it: a team
broker written by `smartiot broker config --person-accounts` (real mosquitto
with its dynamic-security plugin), people added with `smartiot users add` on
the hub's machine, `smartiot hub --api` serving the REST API on loopback.
People sign in over HTTP and get their own broker login: the broker itself
refuses a support person's command and passes an engineer's; the server
refuses a technician's request the role may not make (403, audited);
disabling a person takes their broker access away; the hub stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from simulator.broker import find_free_port, wait_for_port
from tests.integration.hub.conftest import wait_until

DEVICE = "dev-00000"
PASSWORDS = {"eve": "engineer secret 1", "sam": "support secret 1", "tim": "technician 1!"}


class Team:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.broker_port = find_free_port()
        self.api_port = find_free_port()
        self.env = {**os.environ, "SMARTIOT_CONFIG": str(tmp_path / "config.toml"),
                    "SMARTIOT_DATA_DIR": str(tmp_path / "data"),
                    "SMARTIOT_ENTRY_POINTS": "0",
                    "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
                    "SMARTIOT_SECRETS_BACKEND": "file",
                    "SMARTIOT_SECRETS_PASSPHRASE": "team test passphrase"}
        self.env.pop("SMARTIOT_ROLE", None)
        (tmp_path / "config.toml").write_text(
            'profile = "team"\n[profiles.team]\n'
            f'broker = "mqtt://127.0.0.1:{self.broker_port}"\n'
            f'database = "sqlite:///{tmp_path / "hub.db"}"\n'
            'organization = "acme"\nhub = false\ndemo_fleet = false\n')

    def cli(self, *args: str, stdin: str = "", role: str = "") -> subprocess.CompletedProcess[str]:
        env = {**self.env, **({"SMARTIOT_ROLE": role} if role else {})}
        return subprocess.run([sys.executable, "-m", "console.cli", *args], input=stdin,
                              capture_output=True, text=True, env=env, timeout=120)

    def http(self, method: str, path: str, body: Any = None, token: str = ""
             ) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json",
                     **({"Authorization": f"Bearer {token}"} if token else {})})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def login(self, user: str) -> dict[str, Any]:
        status, body = self.http("POST", "/auth/login",
                                 {"username": user, "password": PASSWORDS[user]})
        assert status == 200, body
        return dict(body["data"])


class Mqtt:
    """One MQTT v5 client; remembers what arrived and the PUBACK reason codes."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.received: list[str] = []
        self.acks: dict[int, ReasonCode] = {}
        self.connected = threading.Event()
        self.refused: list[str] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                                  client_id=f"t-{username}-{time.monotonic_ns()}")
        self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.received.append(m.topic)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: ReasonCode,
                    properties: Properties | None) -> None:
        if reason.is_failure:
            self.refused.append(str(reason))
        else:
            self.connected.set()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: ReasonCode,
                    properties: Properties | None) -> None:
        self.acks[mid] = reason

    def publish(self, topic: str) -> ReasonCode:
        info = self.client.publish(topic, json.dumps({"requestId": "r1", "command": "ping"}),
                                   qos=1)
        return wait_until(lambda: self.acks.get(info.mid), 10, f"no PUBACK for {topic}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    t = Team(tmp_path)
    done = t.cli("broker", "config", "--out", str(tmp_path / "broker"), "--devices", "1",
                 "--prefix", "dev", "--bind", "127.0.0.1", "--port", str(t.broker_port),
                 "--person-accounts")
    assert done.returncode == 0, done.stderr
    assert "people's own broker accounts" in done.stdout
    conf = (tmp_path / "broker" / "mosquitto.conf").read_text()
    assert "mosquitto_dynamic_security.so" in conf
    broker = subprocess.Popen(["mosquitto", "-c", str(tmp_path / "broker" / "mosquitto.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for_port("127.0.0.1", t.broker_port, 10), "mosquitto did not start"
        yield t
    finally:
        broker.terminate()
        broker.wait(10)


def test_people_sign_in_to_the_hub_with_their_own_broker_accounts(team: Team) -> None:
    # The first admin and the team, added on the hub's machine against its database.
    first = team.cli("users", "add", "ada", "--role", "admin", "--password-stdin",
                     stdin="the admin secret\n", role="admin")
    assert first.returncode == 0, first.stderr
    for user, role in (("eve", "engineer"), ("sam", "support"), ("tim", "technician")):
        added = team.cli("users", "add", user, "--role", role, "--password-stdin",
                         stdin=PASSWORDS[user] + "\n", role="admin")
        assert added.returncode == 0, added.stderr

    hub = subprocess.Popen([sys.executable, "-m", "console.cli", "hub", "--status-every", "60",
                            "--api", f"127.0.0.1:{team.api_port}"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=team.env)
    lines: list[str] = []

    def read() -> None:
        assert hub.stdout is not None
        for line in iter(hub.stdout.readline, ""):
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    clients: list[Mqtt] = []
    try:
        wait_until(lambda: any("REST API on http://127.0.0.1" in x for x in lines)
                   or hub.poll() is not None, 60, "the hub did not start")
        assert hub.poll() is None, "".join(lines)
        assert any("their own broker accounts" in x for x in lines), lines

        eve, sam, tim = team.login("eve"), team.login("sam"), team.login("tim")
        assert (eve["actor"]["role"], eve["actor"]["organization"]) == ("engineer", "acme")
        assert eve["broker"]["username"] == "person.eve" and eve["broker"]["can_command"]
        assert sam["broker"]["username"] == "person.sam"
        assert sam["broker"]["can_command"] is False
        assert eve["broker"]["url"] == f"mqtt://127.0.0.1:{team.broker_port}"

        fleet_secret = team.cli("broker", "password", "--device", DEVICE).stdout.strip()
        device = Mqtt(team.broker_port, DEVICE, fleet_secret)
        clients.append(device)
        assert device.connected.wait(10), device.refused
        device.client.subscribe(f"cmd/+/{DEVICE}/req", qos=1)
        time.sleep(0.3)

        support = Mqtt(team.broker_port, sam["broker"]["username"], sam["broker"]["password"])
        engineer = Mqtt(team.broker_port, eve["broker"]["username"],
                        eve["broker"]["password"])
        clients += [support, engineer]
        assert support.connected.wait(10), support.refused
        assert engineer.connected.wait(10), engineer.refused
        topic = f"cmd/acme/{DEVICE}/req"
        refused = support.publish(topic)
        assert refused.is_failure and refused.value == 135  # Not authorized, from the broker
        assert engineer.publish(topic).value == 0
        wait_until(lambda: device.received == [topic], 10, "the engineer's command is lost")
        time.sleep(0.3)
        assert device.received == [topic]  # the support person's never arrived

        # A second sign-in rotates the broker password: the old one stops working.
        old = eve["broker"]["password"]
        second = team.login("eve")
        assert second["broker"]["password"] != old
        stale = Mqtt(team.broker_port, "person.eve", old)
        clients.append(stale)
        wait_until(lambda: stale.refused, 10, "an old broker password still works")
        # A console restarting with only its refresh token asks for a broker login too.
        status, body = team.http("POST", "/auth/refresh",
                                 {"refresh_token": second["refresh_token"], "broker": True})
        assert status == 200 and body["data"]["broker"]["username"] == "person.eve"
        renewed = Mqtt(team.broker_port, "person.eve", body["data"]["broker"]["password"])
        clients.append(renewed)
        assert renewed.connected.wait(10), renewed.refused
        status, body = team.http("POST", "/auth/refresh",
                                 {"refresh_token": body["data"]["refresh_token"]})
        assert status == 200 and body["data"]["broker"] is None  # not asked: unchanged

        # The server refuses what the technician's role may not do, and audits it.
        status, body = team.http("POST", f"/devices/{DEVICE}/decommission", {},
                                 token=tim["access_token"])
        assert status == 403 and body["error"]["code"] == "FORBIDDEN"

        # Disabled on the hub's machine: the hub takes the broker access away too.
        assert team.cli("users", "disable", "sam", role="admin").returncode == 0
        wait_until(lambda: any("removed the broker account of sam" in x for x in lines), 20,
                   f"sam kept broker access: {lines[-5:]}")
        again = Mqtt(team.broker_port, sam["broker"]["username"], sam["broker"]["password"])
        clients.append(again)
        wait_until(lambda: again.refused, 10, "a disabled person can still use the broker")
        status, body = team.http("POST", "/auth/login",
                                 {"username": "sam", "password": PASSWORDS["sam"]})
        assert status == 403 and "disabled" in body["error"]["message"]
    finally:
        for client in clients:
            client.close()
        hub.send_signal(signal.SIGINT)
        code = hub.wait(60)
        reader.join(5)
    assert code == 0, lines[-10:]
    assert any(x.startswith("hub stopped") for x in lines), lines[-5:]
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{team.api_port}/openapi.json", timeout=2)
    trail = json.loads(team.cli("audit", "list", "--json", role="admin").stdout)
    denied = [e for e in trail if e["actor"] == "tim" and e["details"].get("outcome") == "denied"]
    assert [e["action"] for e in denied] == ["device.decommission"]
    logins = [e["actor"] for e in trail if e["action"] == "auth.login"]
    assert sorted(logins) == ["eve", "eve", "sam", "sam", "tim"]
