"""Attack rigs: a real mosquitto started with the files `smartiot broker config`
writes (the team broker), and the embedded amqtt fallback with the same
password file and ACL. Every client logs in through the real path; attackers
use their own valid credentials, which is the case the ACL has to decide."""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from console.cli import main as smartiot
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.hub import Hub
from plugins.local.jobs.file_server import FirmwareFileServer
from simulator.broker import EmbeddedBroker, find_free_port, find_mosquitto, wait_for_port
from simulator.broker_auth import (
    CONSOLE_PREFIX,
    FLEET_SECRET,
    HUB_PASSWORD,
    HUB_USER,
    console_secret_name,
    device_password,
    stored_secret,
)
from tests.tls_certs import TestPki, make_pki

TIMEOUT = 20.0
ORG = "sec"
DEVICES = ("sec-a", "sec-b", "victim", "attacker")
CONSOLES = (("maria", "engineer"), ("sam", "support"))


def wait_until(predicate: Any, timeout: float = TIMEOUT, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")


@dataclass
class Client:
    """A plain paho client that records what it receives and how the broker
    answered its CONNECT, SUBSCRIBE and QoS 1 PUBLISH (MQTT 5 reason codes when
    the broker speaks it)."""

    raw: mqtt.Client
    v5: bool
    connack: list[Any] = field(default_factory=list)
    received: list[tuple[str, bytes]] = field(default_factory=list)
    granted: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def got(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p in self.received if t == topic]

    def subscribe(self, *filters: str) -> list[Any]:
        done = threading.Event()
        self.granted = []

        def on_subscribe(client: Any, userdata: Any, mid: Any, codes: Any, props: Any) -> None:
            self.granted = list(codes)
            done.set()

        self.raw.on_subscribe = on_subscribe
        self.raw.subscribe([(f, 1) for f in filters])
        assert done.wait(TIMEOUT), f"no SUBACK for {filters}"
        return self.granted

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> Any:
        """QoS 1, waits for the PUBACK; returns its reason code on MQTT 5 (None on 3.1.1)."""
        codes: list[Any] = []

        def on_publish(client: Any, userdata: Any, mid: Any, reason: Any, props: Any) -> None:
            codes.append(reason)

        self.raw.on_publish = on_publish
        info = self.raw.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(TIMEOUT)
        wait_until(lambda: codes, TIMEOUT, f"PUBACK for {topic}")
        return codes[0] if self.v5 else None

    def close(self) -> None:
        self.raw.disconnect()
        self.raw.loop_stop()


@dataclass
class SecureBroker:
    kind: str
    host: str
    port: int
    logins: dict[str, tuple[str, str]]
    log: Any  # () -> str
    mtls_port: int | None = None
    pki: TestPki | None = None
    clients: list[Client] = field(default_factory=list)

    @property
    def v5(self) -> bool:
        return self.kind == "mosquitto"  # amqtt speaks MQTT 3.1.1 only

    def connect(self, username: str | None, password: str | None, *,
                client_id: str | None = None, expect_ok: bool = True,
                tls: tuple[Path, Path] | None = None, wait: bool = True) -> Client:
        raw = mqtt.Client(CallbackAPIVersion.VERSION2,
                          client_id=client_id or f"sec-{uuid.uuid4().hex[:8]}",
                          protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311)
        client = Client(raw, self.v5)
        if username is not None:
            raw.username_pw_set(username, password)
        port = self.port
        if tls is not None:
            assert self.pki is not None and self.mtls_port is not None
            raw.tls_set(ca_certs=str(self.pki.ca), certfile=str(tls[0]), keyfile=str(tls[1]))
            port = self.mtls_port

        def on_connect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
            client.connack.append(reason)

        def on_message(c: Any, u: Any, message: Any) -> None:
            with client.lock:
                client.received.append((message.topic, bytes(message.payload)))

        raw.on_connect = on_connect
        raw.on_message = on_message
        raw.reconnect_delay_set(5, 30)
        raw.connect(self.host, port, keepalive=30)
        raw.loop_start()
        self.clients.append(client)
        if wait:
            wait_until(lambda: client.connack, TIMEOUT, f"CONNACK for {username}")
        if expect_ok:
            assert not client.connack[0].is_failure, f"{username}: {client.connack[0]}"
        return client

    def login(self, who: str) -> tuple[str, str]:
        return self.logins[who]

    def as_(self, who: str, **kw: Any) -> Client:
        user, password = self.login(who)
        return self.connect(user, password, client_id=kw.pop("client_id", None) or
                            (who if who in DEVICES else None), **kw)

    def close_clients(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()


def _team_broker(tmp: Path) -> Iterator[SecureBroker]:
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed; run `make test`")
    (tmp / "pki").mkdir()
    pki = make_pki(tmp / "pki")
    port, mtls_port = find_free_port(), find_free_port()
    devices = tmp / "devices.txt"
    devices.write_text("# the security test fleet\n" + "\n".join(DEVICES) + "\n")
    out = tmp / "broker"
    args = ["broker", "config", "--out", str(out), "--device-list", str(devices),
            "--bind", "127.0.0.1", "--port", str(port), "--mtls-port", str(mtls_port),
            "--cafile", str(pki.ca), "--certfile", str(pki.server_cert),
            "--keyfile", str(pki.server_key)]
    for user, role in CONSOLES:
        args += ["--console", f"{user}:{role}"]
    assert smartiot(args) == 0
    log_path = tmp / "mosquitto.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([find_mosquitto() or "mosquitto", "-c",
                                    str(out / "mosquitto.conf")],
                                   stdout=log_file, stderr=subprocess.STDOUT)
    try:
        assert wait_for_port("127.0.0.1", port, 10), log_path.read_text()
        fleet = stored_secret(FLEET_SECRET)
        hub = stored_secret(HUB_PASSWORD)
        assert fleet and hub
        logins = {"hub": (HUB_USER, hub)}
        for user, _role in CONSOLES:
            password = stored_secret(console_secret_name(user))
            assert password
            logins[user] = (f"{CONSOLE_PREFIX}{user}", password)
        for device in DEVICES:
            logins[device] = (device, device_password(fleet, device))
        yield SecureBroker("mosquitto", "127.0.0.1", port, logins,
                           lambda: log_path.read_text(errors="replace"), mtls_port, pki)
    finally:
        process.terminate()
        process.wait(10)


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _amqtt_broker() -> Iterator[SecureBroker]:
    captured = _Captured()
    logger = logging.getLogger("simulator.broker")
    logger.addHandler(captured)
    logger.setLevel(logging.INFO)
    broker = EmbeddedBroker(prefer="amqtt", devices=DEVICES, consoles=CONSOLES).start()
    try:
        logins = {"hub": broker.hub_login}
        for user, _role in CONSOLES:
            logins[user] = broker.console_login(user)
        for device in DEVICES:
            logins[device] = broker.device_login(device)
        yield SecureBroker("amqtt", broker.host, broker.port, logins,  # type: ignore[arg-type]
                           lambda: "\n".join(captured.lines))
    finally:
        broker.stop()
        logger.removeHandler(captured)


@pytest.fixture(scope="module")
def team_broker(tmp_path_factory) -> Iterator[SecureBroker]:
    yield from _team_broker(tmp_path_factory.mktemp("team"))


@pytest.fixture(scope="module")
def amqtt_secure_broker() -> Iterator[SecureBroker]:
    yield from _amqtt_broker()


@pytest.fixture(params=["mosquitto", "amqtt"])
def broker(request) -> Iterator[SecureBroker]:
    """The team's mosquitto and the embedded amqtt fallback, same files."""
    chosen = request.getfixturevalue(
        "team_broker" if request.param == "mosquitto" else "amqtt_secure_broker")
    yield chosen
    chosen.close_clients()


@pytest.fixture
def team(team_broker: SecureBroker) -> Iterator[SecureBroker]:
    yield team_broker
    team_broker.close_clients()


@pytest.fixture
def hub_rig(team: SecureBroker, tmp_path: Path) -> Iterator[tuple[Store, Hub]]:
    """A real hub (ingest, shadows, jobs, rollout engine) logged in as the hub user."""
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    user, password = team.login("hub")
    hub = Hub(store, EventBus(), team.host, team.port, username=user, password=password,
              file_server=FirmwareFileServer(store.firmware, expiry_s=600))
    hub.start()
    try:
        assert hub.wait_subscribed(TIMEOUT), "the hub could not log in and subscribe"
        yield store, hub
    finally:
        hub.stop()
        store.close()


def telemetry(device_id: str, seq: int, **metrics: float) -> bytes:
    return json.dumps({"device_id": device_id, "seq": seq, "ts": int(time.time() * 1000),
                       "type": "environmental", "fw": "1.0.0",
                       "metrics": metrics or {"temperature": 21.5}}).encode()
