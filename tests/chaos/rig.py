"""Real parts the chaos tests break on purpose: a private mosquitto with
persistence that can be killed with SIGKILL and started again on the same port
and state, a TCP proxy that cuts and restores the network, a SQLite write lock
held by another connection, a `smartiot hub` subprocess, and an independent
witness that records every QoS 1 reading the broker accepted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulator.api import RunningFleet
from simulator.broker import find_free_port, find_mosquitto, wait_for_port
from simulator.broker_queue import MAX_INFLIGHT_LINE
from simulator.faults import FaultPlan
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]
TELEMETRY = "dt/+/+/telemetry"


def wait_until(predicate, timeout=30.0, message="condition not met in time", every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(message)


class PersistentMosquitto:
    """mosquitto with a persistence file saved every second, so sessions and
    queued QoS 1 messages outlive a SIGKILL (up to the last save)."""

    def __init__(self, port: int | None = None) -> None:
        binary = find_mosquitto()
        if binary is None:
            raise AssertionError("mosquitto is not installed (sudo apt-get install mosquitto)")
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = port or find_free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="smartiot-chaos-broker-")
        self.workdir = Path(self._dir.name)
        self.process: subprocess.Popen[bytes] | None = None
        (self.workdir / "mosquitto.conf").write_text("\n".join([
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "max_connections -1",
            "max_queued_messages 1000000",  # the hub's session may queue a whole outage
            # as `smartiot broker config` writes it: mosquitto 2.0.11 loses queued
            # messages beyond the inflight limit at a reconnect (broker_queue.py)
            MAX_INFLIGHT_LINE,
            "log_type error", "log_type warning", "log_dest stderr",
            *(["user root"] if os.geteuid() == 0 else []),
            "",
        ]))

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> PersistentMosquitto:
        deadline = time.monotonic() + 15
        while True:  # the old listener's port can take a moment to be free again
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.workdir / "mosquitto.conf")],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if wait_for_port(self.host, self.port, 5):
                return self
            self.process.kill()
            self.process.wait()
            if time.monotonic() > deadline:
                raise AssertionError("mosquitto did not start: "
                                     + (self.process.stderr.read() or b"").decode()[-500:])
            time.sleep(0.3)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._dir.cleanup()


class Witness:
    """An independent QoS 1 subscriber with its own persistent session: the keys
    (device, metric, ts) of every telemetry message the broker accepted."""

    def __init__(self, host: str, port: int, name: str) -> None:
        self._lock = threading.Lock()
        # every key the broker delivered, with when it first came (time.monotonic())
        self.first_seen: dict[tuple[str, str, int], float] = {}
        self.messages = 0
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"witness-{name}",
                                  clean_session=False)
        self.client.on_connect = self._connected
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async(host, port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(15):
            raise AssertionError("the witness could not subscribe")

    def _connected(self, client, userdata, flags, reason, properties):
        if not reason.is_failure:
            client.subscribe(TELEMETRY, qos=1)

    def _message(self, client, userdata, message):
        body = json.loads(message.payload)
        with self._lock:
            self.messages += 1
            now = time.monotonic()
            for metric in body["metrics"]:
                self.first_seen.setdefault((body["device_id"], metric, int(body["ts"])), now)

    def snapshot(self) -> set[tuple[str, str, int]]:
        with self._lock:
            return set(self.first_seen)

    def received_outside(self, start: float, end: float) -> set[tuple[str, str, int]]:
        """The keys first received before `start` or after `end` (monotonic times):
        what a test may demand of the store when the broker could lose the rest."""
        with self._lock:
            return {k for k, t in self.first_seen.items() if not start <= t <= end}

    def describe(self, keys: set[tuple[str, str, int]], since: float) -> str:
        """When the witness first saw each of `keys`, in seconds after `since`:
        a failure message that tells a broker's loss from the hub's."""
        with self._lock:
            times = sorted(self.first_seen[k] - since for k in keys if k in self.first_seen)
        shown = ", ".join(f"{t:+.2f}" for t in times[:12])
        return f"{len(keys)} keys, first seen at [{shown}{' …' if len(times) > 12 else ''}] s"

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def wait_all_stored(expected: set[tuple[str, str, int]], db_path: Path, *, what: str,
                    witness: Witness, since: float, event: str, store: Any, hub: Any,
                    timeout: float = 60.0) -> None:
    """Wait until every key in ``expected`` is stored; else fail with what is
    missing, when the witness saw it (seconds after the ``event`` at ``since``)
    and the hub's own account of those devices (:func:`missing_report`)."""
    try:
        wait_until(lambda: expected <= set(stored_keys(db_path)), timeout, "")
    except AssertionError:
        missing = expected - set(stored_keys(db_path))
        raise AssertionError(f"{what} are missing from the store: "
                             f"{witness.describe(missing, since)} after the {event}; "
                             f"{missing_report(missing, store, hub)}") from None


def missing_report(missing: set[tuple[str, str, int]], store: Any, hub: Any) -> str:
    """For a failure: some of the readings not stored, and what the hub's seq
    accounting made of their devices (received, lost, duplicates, out of order,
    last seq) and its counters, which tell a message that never reached the hub
    from one it received and did not store."""
    devices = {d for d, _m, _ts in missing}
    stats = {s.device_id: (s.received, s.lost, s.duplicates, s.out_of_order, s.last_seq)
             for s in store.link_stats.list() if s.device_id in devices}
    counters = {k: v for k, v in hub.snapshot().items() if isinstance(v, int)}
    return (f"missing {sorted(missing)[:8]}; the hub's (received, lost, duplicates, "
            f"out of order, last seq) for those devices: {stats}; hub counters: {counters}")


def stored_keys(db_path: Path) -> Counter[tuple[str, str, int]]:
    """Every stored reading's key, with how often it is stored."""
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True,
                                            timeout=30)) as conn:
        try:
            rows = conn.execute("SELECT device_id, metric, ts FROM telemetry").fetchall()
        except sqlite3.OperationalError:  # not created yet
            return Counter()
    return Counter((d, m, int(t)) for d, m, t in rows)


def fleet(broker_url: str, devices: int, *, prefix: str, interval_s: float = 0.2,
          org: str = "chaos", device_type: str = "environmental") -> RunningFleet:
    group = DeviceGroup(prefix, device_type, devices, org=org, interval_s=interval_s,
                        id_prefix=prefix)
    return RunningFleet(Scenario("chaos", (group,), FaultPlan(())), broker_url=broker_url,
                        telemetry_qos=1, client_id_prefix=f"{prefix}-").start()


@contextlib.contextmanager
def sqlite_write_lock(db_path: Path) -> Iterator[None]:
    """Another connection holds the database's write lock (BEGIN IMMEDIATE) until
    the block ends: what a long backup or a stuck console does to the hub."""
    conn = sqlite3.connect(db_path, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


class HubProcess:
    """``smartiot hub`` in its own process, its status lines collected as they come."""

    def __init__(self, broker_url: str, database_url: str, data_dir: Path,
                 *extra: str, status_every: float = 1.0) -> None:
        env = dict(os.environ)
        env.update({"SMARTIOT_BROKER": broker_url, "SMARTIOT_DATABASE": database_url,
                    "SMARTIOT_DEMO_FLEET": "false", "SMARTIOT_HUB": "true",
                    "SMARTIOT_DATA_DIR": str(data_dir),
                    "SMARTIOT_CONFIG": str(data_dir / "config.toml"),
                    "PYTHONUNBUFFERED": "1"})
        self.lines: list[tuple[float, str]] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "console", "hub", "--status-every", str(status_every),
             *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append((time.monotonic(), line.rstrip()))

    def text(self) -> str:
        return "\n".join(line for _, line in list(self.lines))

    def saw(self, fragment: str, since: float = 0.0) -> bool:
        return any(fragment in line for at, line in list(self.lines) if at >= since)

    def wait_running(self, timeout: float = 60.0) -> None:
        wait_until(lambda: self.saw("hub running") or self.process.poll() is not None,
                   timeout, "the hub did not start")
        assert self.process.poll() is None, self.text()

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._reader.join(5)

    def interrupt(self, timeout: float = 90.0) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class TcpProxy:
    """A TCP relay the test can cut (every connection reset, new ones refused)
    and restore: the network between devices and the broker going away."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.host = "127.0.0.1"
        self.port = find_free_port()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.cuts = 0
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.up()

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def up(self) -> None:
        async def listen():
            if self._server is None:
                self._server = await asyncio.start_server(self._client, self.host, self.port,
                                                          reuse_address=True)
        self._call(listen())

    def down(self) -> None:
        async def cut():
            if self._server is not None:
                self._server.close()
                self._server = None
            for writer in list(self._writers):
                with contextlib.suppress(Exception):
                    sock = writer.get_extra_info("socket")
                    if sock is not None:  # reset, as a dead link looks to both ends
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    writer.close()
            self._writers.clear()
        self._call(cut())
        self.cuts += 1

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    if dst not in self._writers:
                        break
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


class PrivatePostgres:
    """A throwaway PostgreSQL cluster in a temporary directory on a free port,
    never the shared server. initdb refuses to run as root, so as root the
    cluster belongs to the ``postgres`` OS user (runuser)."""

    def __init__(self) -> None:
        import glob
        import pwd

        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise AssertionError("PostgreSQL server binaries are not installed "
                                 "(/usr/lib/postgresql/*/bin)")
        self.bin = Path(found[-1]).parent
        self.port = find_free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="smartiot-chaos-pg-")
        self.root = Path(self._dir.name)
        self.data = self.root / "data"
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run([*self.prefix, str(self.bin / tool), *args],
                                capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise AssertionError(f"{tool} failed: {result.stdout[-800:]} {result.stderr[-800:]}")

    def start(self) -> PrivatePostgres:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        self._dir.cleanup()
