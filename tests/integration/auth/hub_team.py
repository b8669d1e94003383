"""The team set-up of docs/team.md for tests, with real parts: a broker
written by `smartiot broker config --person-accounts` (mosquitto with its
dynamic-security plugin), the hub's machine's CLI, `smartiot hub --api` in its
own process, people's HTTP calls and MQTT clients. Shared by the sign-in test
and the console-on-the-hub test, which start the same team and hub."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def team_broker(tmp_path: Path, prefix: str) -> Iterator[tuple[Team, str]]:
    """A team whose mosquitto runs on what `smartiot broker config
    --person-accounts` writes for one device named ``prefix``; yields the team
    and what the command printed (the tests check what it promised)."""
    t = Team(tmp_path)
    done = t.cli("broker", "config", "--out", str(tmp_path / "broker"), "--devices", "1",
                 "--prefix", prefix, "--bind", "127.0.0.1", "--port", str(t.broker_port),
                 "--person-accounts")
    assert done.returncode == 0, done.stderr
    broker = subprocess.Popen(["mosquitto", "-c", str(tmp_path / "broker" / "mosquitto.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for_port("127.0.0.1", t.broker_port, 10), "mosquitto did not start"
        yield t, done.stdout
    finally:
        broker.terminate()
        broker.wait(10)


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    with team_broker(tmp_path, "dev") as (t, printed):
        assert "people's own broker accounts" in printed
        conf = (tmp_path / "broker" / "mosquitto.conf").read_text()
        assert "mosquitto_dynamic_security.so" in conf
        yield t


class HubProcess:
    """`smartiot hub --api` of the team in its own process; what it prints is
    collected line by line (the tests wait for and check its messages)."""

    def __init__(self, team: Team) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "console.cli", "hub", "--status-every", "60",
             "--api", f"127.0.0.1:{team.api_port}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=team.env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in iter(self.process.stdout.readline, ""):
            self.lines.append(line)

    def wait_serving(self) -> None:
        """Until the REST API is up; a hub that exits first fails with its output."""
        wait_until(lambda: any("REST API on http://127.0.0.1" in x for x in self.lines)
                   or self.process.poll() is not None, 60, "the hub did not start")
        assert self.process.poll() is None, "".join(self.lines)

    def stop(self) -> int:
        """Ctrl+C, as a person stops it; the exit code."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(60)
        self._reader.join(5)
        return code
