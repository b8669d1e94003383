"""An embedded MQTT broker for the offline default and for tests.

A private ``mosquitto`` on a free loopback port when the binary exists (fast,
and the same broker most fleets run), otherwise an in-process amqtt broker so
the console still works on a laptop with nothing installed. Either way the
caller gets a URL and a ``stop()`` that leaves nothing running.

Both authenticate by default: fresh random credentials for the hub, the
consoles and the fleet (device passwords derived from the fleet secret), a
password file and an ACL modelled on IoT Core policies (simulator.broker_auth).
``anonymous=True`` is an explicit opt-in for tests of unrelated behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import resource
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from simulator import broker_guard
from simulator.broker_auth import HUB_USER, BrokerCredentials, write_auth_files
from simulator.broker_queue import MAX_INFLIGHT_LINE, HubQueue, hub_queue
from simulator.local_brokers import LocalBroker, announce, private_workdir

log = logging.getLogger(__name__)

MOSQUITTO_CANDIDATES = (
    "/usr/sbin/mosquitto",
    "/usr/local/sbin/mosquitto",
    "/opt/homebrew/sbin/mosquitto",
)


class BrokerError(RuntimeError):
    """The embedded broker could not start; the message says why and what to try."""


EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LISTEN_PORTS_FROM = 10_000


def _listen_port_range() -> range | None:
    """Ports below the kernel's ephemeral range, where no outgoing connection lands.

    A port the kernel hands out for ``bind(0)`` comes from the range it also uses for
    every outgoing connection on the machine, so between the check and the broker's
    bind a database or MQTT client could take it ("Address already in use"). None
    where the range is unknown (not Linux) or leaves no room below it.
    """
    try:
        low = int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return range(LISTEN_PORTS_FROM, low) if low - LISTEN_PORTS_FROM >= 1000 else None


def find_free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now, for a listener started in a moment."""
    ports = _listen_port_range()
    if ports is not None:
        pick = random.SystemRandom()  # processes started together must not agree
        for _ in range(50):
            port = pick.choice(ports)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Brokers bind with SO_REUSEADDR, so old connections in TIME_WAIT after a
        # restart must not count as "in use"; a live listener still does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_CANDIDATES if os.access(p, os.X_OK)), None)


def raise_fd_limit(wanted: int = 65536) -> int:
    """Lift the soft open-files limit towards the hard one; 10,000 device sessions
    need 10,000 sockets in the simulator and as many in the broker it spawns."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.02)
    return False


def _aws_topic_broker_class() -> Any:
    """amqtt with three repairs. It refuses (and disconnects) clients that publish
    to topics starting with ``$``, but AWS IoT's shadow and jobs APIs live under
    ``$aws/things/``.
    Deliver those ourselves, through amqtt's own broadcast and retain paths, so
    the in-process broker speaks the same protocol as mosquitto and IoT Core.
    A test sends shadow traffic through it, so an amqtt upgrade that breaks
    this is caught."""
    from amqtt.broker import Broker
    from amqtt.contexts import Action

    class SnapshotDict(dict):  # type: ignore[type-arg]
        """amqtt iterates its subscription table across awaits while other
        sessions subscribe ("dictionary changed size during iteration" under
        load); iterating a snapshot of the keys makes that safe."""

        def __iter__(self) -> Any:
            return iter(list(super().keys()))

    class AwsTopicBroker(Broker):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._subscriptions = SnapshotDict(self._subscriptions)  # type: ignore[has-type]

        async def _handle_message_delivery(self, client_session: Any, handler: Any,
                                           wait_deliver: Any) -> bool:
            message = wait_deliver.result()
            if message is not None and str(message.topic).startswith("$aws/things/"):
                # amqtt checks publish permissions in the method we bypass here.
                if not await self._topic_filtering(client_session, topic=message.topic,
                                                   action=Action.PUBLISH):
                    return True
                await self._broadcast_message(client_session, message.topic, message.data)
                packet = message.publish_packet
                if packet is not None and packet.retain_flag:
                    await self.retain_message(client_session, message.topic, message.data,
                                              message.qos)
                return True
            return bool(await super()._handle_message_delivery(client_session, handler,
                                                               wait_deliver))

        async def _publish_retained_messages_for_subscription(
                self, subscription: tuple[str, int], session: Any) -> None:
            # amqtt 0.12 calls this at every connect for every filter ANY client
            # holds, so a new client got the retained messages of other clients'
            # subscriptions (a console of one organization, another's device
            # status). Only a filter this session holds may deliver to it.
            holders = self._subscriptions.get(subscription[0], ())
            if any(held is session for held, _qos in holders):
                await super()._publish_retained_messages_for_subscription(subscription,
                                                                          session)

    return AwsTopicBroker


def login_works(host: str, port: int, username: str | None, password: str | None,
                timeout_s: float) -> bool:
    """True once the broker accepts this login: how a caller waits for a
    password file reload to take effect."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    deadline = time.monotonic() + timeout_s
    result: list[bool] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2,
                         client_id=f"smartiot-reload-probe-{os.getpid()}")
    client.username_pw_set(username, password)
    client.on_connect = lambda c, u, f, reason, p: result.append(not reason.is_failure)
    while time.monotonic() < deadline:
        result.clear()
        try:
            client.connect(host, port, keepalive=10)
            while not result and time.monotonic() < deadline:
                client.loop(timeout=0.05)
        except OSError:
            pass
        with contextlib.suppress(Exception):
            client.disconnect()
            client.loop(timeout=0.05)
        if result and result[0]:
            return True
        time.sleep(0.05)
    return False


@dataclass(frozen=True)
class BrokerTls:
    """Server certificate for a TLS listener; with ``require_client_cert`` devices must
    present a certificate signed by ``ca_file`` (mutual TLS, as AWS IoT Core does)."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    require_client_cert: bool = True


class EmbeddedBroker:
    """Start with ``start()`` or as a context manager; ``url`` is mqtt://127.0.0.1:PORT
    (mqtts:// with ``tls``, which needs mosquitto)."""

    def __init__(self, *, prefer: str = "auto", port: int | None = None,
                 tls: BrokerTls | None = None, anonymous: bool = False,
                 credentials: BrokerCredentials | None = None,
                 devices: Iterable[str] = (),
                 consoles: Iterable[tuple[str, str]] = (),
                 queue: HubQueue | None = None) -> None:
        """Unless ``anonymous``: ``devices`` may log in (more with ``add_devices``),
        ``consoles`` are (user, role) pairs; ``credentials`` default to fresh
        random ones (``self.credentials``). ``queue``: what mosquitto keeps for
        the hub's persistent session while the hub is away (simulator.broker_queue;
        default: 10 minutes of a 1,000-device fleet)."""
        self.queue = queue or hub_queue(1000)
        if anonymous and credentials is not None:
            raise ValueError("an anonymous broker takes no credentials")
        self.anonymous = anonymous
        self.credentials: BrokerCredentials | None = None
        if not anonymous:
            self.credentials = credentials or BrokerCredentials.generate(consoles)
        self.devices: list[str] = list(dict.fromkeys(devices))
        if prefer not in ("auto", "mosquitto", "amqtt"):
            raise ValueError(f"prefer must be auto, mosquitto or amqtt, not {prefer!r}")
        self.prefer = prefer
        self.tls = tls
        if tls is not None and prefer == "amqtt":
            raise ValueError("the TLS listener needs mosquitto")
        self.host = "127.0.0.1"
        self.port = port or find_free_port()
        # a port we chose ourselves may be taken by someone else before we bind it
        self._port_chosen_here = not port
        self.kind = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._amqtt: Any = None
        self._auth_dir: Path | None = None

    @property
    def hub_login(self) -> tuple[str | None, str | None]:
        """(username, password) for the hub; (None, None) on an anonymous broker."""
        if self.credentials is None:
            return None, None
        return HUB_USER, self.credentials.hub_password

    def console_login(self, user: str) -> tuple[str | None, str | None]:
        if self.credentials is None:
            return None, None
        account = self.credentials.console(user)
        return account.username, account.password

    def device_login(self, device_id: str) -> tuple[str | None, str | None]:
        if self.credentials is None:
            return None, None
        return device_id, self.credentials.device_password(device_id)

    @property
    def fleet_secret(self) -> str | None:
        return None if self.credentials is None else self.credentials.fleet_secret

    def add_devices(self, device_ids: Iterable[str]) -> None:
        """Lets more devices log in to a running broker: the password file is
        rewritten and the broker reloads it (SIGHUP for mosquitto)."""
        new = [d for d in dict.fromkeys(device_ids) if d not in set(self.devices)]
        if not new or self.credentials is None:
            self.devices += new
            return
        assert self._auth_dir is not None
        running = self._process is not None and self._process.poll() is None
        LocalBroker(self._auth_dir, self.host, self.port, self.kind,
                    self._process.pid if running and self._process else 0,
                    ).add_devices(new, self.credentials.fleet_secret)
        self.devices += new
        if running:
            # mosquitto reloads on its next loop pass; return once it has, so
            # the new devices' first connection is not refused.
            if not login_works(self.host, self.port, *self.device_login(new[-1]), timeout_s=10):
                raise BrokerError(f"mosquitto did not reload its password file: "
                                  f"{self.log_text()[-500:]}")
        elif self._loop is not None:
            from simulator import broker_amqtt

            async def reload() -> None:
                broker_amqtt.reload()

            asyncio.run_coroutine_threadsafe(reload(), self._loop).result(timeout=10)


    def _write_auth(self) -> None:
        if self.credentials is None:
            return
        assert self._workdir is not None
        self._auth_dir = Path(self._workdir.name)
        write_auth_files(self._auth_dir, self.devices, self.credentials)

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> EmbeddedBroker:
        for _ in range(5):
            if not self._port_chosen_here or port_is_free(self.host, self.port):
                break
            self.port = find_free_port(self.host)
        if not port_is_free(self.host, self.port):
            raise BrokerError(
                f"the broker did not start on port {self.port}: the port is already in use"
            )
        binary = find_mosquitto() if self.prefer in ("auto", "mosquitto") else None
        if binary:
            self._start_mosquitto(binary, timeout_s)
        elif self.prefer == "mosquitto" or self.tls is not None:
            raise BrokerError(
                "mosquitto is not installed; install it (sudo apt-get install mosquitto) "
                "or let the console use its built-in broker"
            )
        else:
            self._start_amqtt(timeout_s)
        return self

    # ------------------------------------------------------------------ mosquitto
    def _start_mosquitto(self, binary: str, timeout_s: float) -> None:
        raise_fd_limit()
        self._workdir = (private_workdir("broker-") if self.credentials is not None
                         else tempfile.TemporaryDirectory(prefix="smartiot-broker-"))
        self._write_auth()
        conf = Path(self._workdir.name) / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    f"listener {self.port} {self.host}",
                    *self._auth_lines(),
                    "persistence false",
                    "max_connections -1",
                    *self.queue.conf_lines(),
                    MAX_INFLIGHT_LINE,
                    "set_tcp_nodelay true",
                    "log_type error",
                    "log_type warning",
                    "log_dest stderr",
                    # Started as root, mosquitto would switch to the "mosquitto" user
                    # before loading certificates from our private directories.
                    *(["user root"] if os.geteuid() == 0 else []),
                    *self._tls_lines(),
                    "",
                ]
            )
        )
        log_file = open(Path(self._workdir.name) / "mosquitto.log", "wb")  # noqa: SIM115
        # broker_guard: the broker dies with this process, even on kill -9
        self._process = broker_guard.spawn(
            [binary, "-c", str(conf)], stdout=log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log_file.close()
        if not wait_for_port(self.host, self.port, timeout_s) or self._process.poll() is not None:
            output = self.log_text()
            self.stop()
            raise BrokerError(f"mosquitto did not start on port {self.port}: {output.strip()}")
        self.kind = "mosquitto"
        if self._auth_dir is not None:
            announce(self._auth_dir, host=self.host, port=self.port, kind=self.kind,
                     reload_pid=self._process.pid)

    def _auth_lines(self) -> list[str]:
        if self._auth_dir is None:
            return ["allow_anonymous true"]
        return [
            "allow_anonymous false",
            f"password_file {self._auth_dir / 'passwd'}",
            f"acl_file {self._auth_dir / 'acl'}",
            # Refused logins are notices; mosquitto logs denied publishes only at debug.
            "log_type notice",
        ]

    def _tls_lines(self) -> list[str]:
        if self.tls is None:
            return []
        return [
            f"cafile {self.tls.ca_file}",
            f"certfile {self.tls.cert_file}",
            f"keyfile {self.tls.key_file}",
            f"require_certificate {'true' if self.tls.require_client_cert else 'false'}",
            "tls_version tlsv1.2",
        ]

    def log_text(self) -> str:
        if self._workdir is None:
            return ""
        path = Path(self._workdir.name) / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ------------------------------------------------------------------ amqtt
    def _start_amqtt(self, timeout_s: float) -> None:
        try:
            broker_class = _aws_topic_broker_class()
        except ImportError:
            raise BrokerError(
                "no MQTT broker available: install mosquitto (sudo apt-get install mosquitto) "
                "or the amqtt package, or configure a broker URL"
            ) from None
        ready = threading.Event()
        failure: list[BaseException] = []
        plugins: dict[str, Any] = {"simulator.broker_amqtt.AcceptEveryClient": {}}
        if self.credentials is not None:
            self._workdir = private_workdir("broker-")
            self._write_auth()
            assert self._auth_dir is not None
            plugins = {
                "simulator.broker_amqtt.MosquittoPasswordAuth":
                    {"password_file": str(self._auth_dir / "passwd")},
                "simulator.broker_amqtt.MosquittoAclCheck":
                    {"acl_file": str(self._auth_dir / "acl")},
            }
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}",
                                      "max_connections": 0}},
            "plugins": plugins,
        }

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._amqtt = broker_class(config, loop=loop)
                loop.run_until_complete(self._amqtt.start())
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
        self._thread.start()
        # amqtt's start() returns once its listener is bound, so no port probe
        # (a bare probe connection makes amqtt log a spurious error).
        started = ready.wait(timeout_s)
        if failure or not started:
            self.stop()
            reason = f"{type(failure[0]).__name__}: {failure[0]}" if failure else "timed out"
            raise BrokerError(f"the built-in broker did not start on port {self.port}: {reason}")
        self.kind = "amqtt"
        if self._auth_dir is not None:
            announce(self._auth_dir, host=self.host, port=self.port, kind=self.kind,
                     reload_pid=0)

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        if self._process is not None:
            broker_guard.forget(self._process.pid)
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait(timeout=5)
            self._process = None
        if self._loop is not None and self._amqtt is not None:
            loop, broker = self._loop, self._amqtt
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(timeout=5)
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._loop = self._amqtt = self._thread = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

