"""High-volume MQTT receiving in a child process of its own.

paho costs ~40 µs of CPU per PUBLISH in Python (socket, packet parsing, MQTT 5
properties, callback matching). On the hub's network thread that work shares
one GIL with the writer, so at 10,000 msg/s the two take turns on one core and
the broker drops what the socket could not take. Here a child process
(``python -m plugins.local.hub.receiver_process``) subscribes to the given
filters with a client of its own that reads a whole socket buffer at a time
(:mod:`plugins.local.hub.mqtt_subscriber`: a few µs a message where paho took
~35, so the child no longer needs a core of its own at fleet scale) and hands
``(topic, payload, received_ms, mid)`` over a pipe in batches (at most every
``batch_wait_s``, or at ``batch_max`` messages): the
parent pays one ``pickle.loads`` per batch and its own per-message work.

The API (also what a console's live feed can use)::

    rx = ReceiverProcess(host, port, client_id="...", filters=["dt/+/+/telemetry"],
                         on_batch=handle)       # handle(batch: Batch), reader thread
    rx.start(); rx.wait_subscribed(10)
    ...                                         # rx.counters, rx.state
    rx.ack(tokens)                              # manual_ack: (batch.generation, mid)
    rx.stop()

Semantics kept from :class:`plugins.local.hub.mqtt_link.MqttLink`: the same
protocol, session (clean or persistent with a session expiry), credentials and
TLS (a picklable factory of the ``SSLContext``: contexts cannot cross
processes), subscriptions at ``qos``, and with ``manual_ack`` a QoS 1 message
is acknowledged to the broker only when the parent says so. Bad payloads are
not judged here: bytes go to the parent as they came.

Bounded memory and backpressure: the child holds at most ``buffer_limit``
messages the parent has not taken. Beyond it QoS 0 messages are dropped and
counted (``dropped``), except on the ``keep`` filters (the hub's device
statuses: a lost "offline" is worse than a late one); for QoS 1 and those the
child's network thread waits (as the hub's does), so TCP pushes back and the
broker queues for the session. A parent that
stops reading (its own inbox full) therefore pushes back through the pipe.

Lifecycle: the child exits when the parent's end of the command pipe closes
(the parent died, however it died) or, polled every second, once its parent
process is no longer there (a process the parent forked may hold the pipe).
A child that dies is started again (``restarts``, logged); a QoS 1 message it
had not acknowledged comes again from the broker with a persistent session
(its tokens are stale: ``ack`` skips them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from plugins.local.hub.mqtt_subscriber import Subscriber, SubscriberConfig, any_matches
from plugins.local.hub.mqtt_wire import MQTT_V5, MQTT_V311

log = logging.getLogger(__name__)

BATCH_MAX = 1000
BATCH_WAIT_S = 0.02
BUFFER_LIMIT = 20_000
BACKPRESSURE_WAIT_S = 10.0
COUNTERS_EVERY_S = 1.0
RESTART_MIN_S, RESTART_MAX_S = 0.2, 5.0
# A token's generation is negative (MqttLink's are positive, so each source
# skips the other's tokens): -(incarnation * _GEN_SPAN + connection generation).
_GEN_SPAN = 1_000_000
ROOT = Path(__file__).resolve().parents[3]

Item = tuple[str, bytes, int, int]  # topic, payload, received_ms, mid (0: QoS 0)


@dataclass(slots=True)
class Batch:
    """Messages in the order the broker sent them. An item's acknowledgement
    token is ``(generation, mid)`` when ``mid`` is not 0 (QoS 1 and
    ``manual_ack``); QoS 0 items have mid 0."""

    generation: int
    items: list[Item]


@dataclass
class ReceiverCounters:
    """Totals over every child this receiver started."""

    received: int = 0     # messages handed to on_batch
    batches: int = 0
    dropped: int = 0      # QoS 0 the child dropped: its buffer full (parent not reading)
    reconnects: int = 0   # the child's connection lost and made again
    restarts: int = 0     # children that died and were started again
    acked: int = 0        # QoS 1 acknowledgements the parent sent down
    child_cpu_s: float = 0.0  # CPU the children used (process_time), as last reported
    refused: str = ""     # the broker refused a subscription or the login: why


@dataclass
class _Incarnation:
    proc: subprocess.Popen[bytes]
    commands: Connection
    data: Connection
    number: int
    reader: threading.Thread | None = None
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    last: dict[str, Any] = field(default_factory=dict)  # its last counters


class ReceiverProcess:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        filters: Sequence[str],
        on_batch: Callable[[Batch], None],
        on_state: Callable[[str], None] | None = None,
        tls_factory: Callable[[], Any] | None = None,
        username: str | None = None,
        password: str | None = None,
        clean_session: bool = True,
        protocol: int = MQTT_V5,
        session_expiry_s: int = 0,
        qos: int = 1,
        manual_ack: bool = False,
        batch_max: int = BATCH_MAX,
        batch_wait_s: float = BATCH_WAIT_S,
        buffer_limit: int = BUFFER_LIMIT,
        transform: str = "",
        keep: Sequence[str] = (),
    ) -> None:
        """``on_batch`` runs on the receiver's reader thread; it may block (its
        own backpressure), which stops the child's network thread in turn.
        ``on_state`` gets "connecting", "connected" or "disconnected".
        ``tls_factory`` must pickle (a module-level function or a
        ``functools.partial`` of one, e.g. ``ssl.create_default_context``).
        ``transform``: ``"module:function"`` the child applies to each batch's
        items before sending them (``Batch.items`` is then what it returns,
        which must pickle and have a ``len``): decoding and trimming in the
        child, as the console's live feed does (plugins.local.live_receiver).
        ``keep``: filters (among ``filters``) whose QoS 0 messages are never
        dropped when the buffer is full: they wait for room as QoS 1 does."""
        if protocol not in (MQTT_V311, MQTT_V5):
            raise ValueError(f"protocol must be {MQTT_V311} (3.1.1) or {MQTT_V5}, not {protocol}")
        if tls_factory is not None:
            pickle.dumps(tls_factory)  # fail here, not in the child
        self.host, self.port = host, port
        self.client_id = client_id
        self.filters = list(filters)
        self.clean_session = clean_session
        self._on_batch = on_batch
        self._on_state = on_state
        self._config: dict[str, Any] = {
            "host": host, "port": port, "client_id": client_id, "filters": self.filters,
            "tls_factory": tls_factory, "username": username, "password": password,
            "clean_session": clean_session, "protocol": protocol,
            "session_expiry_s": int(session_expiry_s), "qos": qos, "manual_ack": manual_ack,
            "batch_max": max(1, batch_max), "batch_wait_s": batch_wait_s,
            "buffer_limit": max(1, buffer_limit), "transform": transform,
            "keep": list(keep),
        }
        self.counters = ReceiverCounters()
        self._done: dict[str, float] = {}  # counters of children that ended
        self.state = "disconnected"
        # How long the newest state took from the child's connection to here: on
        # a loaded box the pipe can lag seconds, and the hub dates a lost link by
        # when the child saw it (the Wills' receive times are the child's too).
        self.state_lag_s = 0.0
        self.last_error = ""
        self.subscribed_event = threading.Event()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._current: _Incarnation | None = None
        self._number = 0
        self._watcher: threading.Thread | None = None

    # ------------------------------------------------------------------ API
    @property
    def pid(self) -> int | None:
        current = self._current
        return current.proc.pid if current is not None else None

    def start(self) -> None:
        self._stopping.clear()
        self._set_state("connecting")
        self._current = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="smartiot-receiver-watch",
                                         daemon=True)
        self._watcher.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Acknowledgements already given go out first, then the child
        disconnects cleanly and hands over what it still held (on_batch runs
        for it before this returns), then it exits; killed if it does not."""
        self._stopping.set()
        current = self._current
        if current is not None:
            self._send(current, ("stop",))
            try:
                current.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.error("the receiver process %d did not stop in %.0f s; killed",
                          current.proc.pid, timeout_s)
                current.proc.kill()
                current.proc.wait(5)
            if current.reader is not None:
                current.reader.join(timeout_s)
            self._close(current)
        if self._watcher is not None:
            self._watcher.join(timeout_s)
        self.subscribed_event.clear()
        self._set_state("disconnected")

    def ack(self, tokens: Sequence[tuple[int, int]]) -> int:
        """Acknowledge QoS 1 messages of the current child; tokens of a child
        that died, or of another source, are skipped. Returns how many went."""
        current = self._current
        if current is None or not tokens:
            return 0
        by_gen: dict[int, list[int]] = {}
        low = -(current.number + 1) * _GEN_SPAN
        high = -current.number * _GEN_SPAN
        for generation, mid in tokens:
            if low < generation <= high:
                by_gen.setdefault(-generation - current.number * _GEN_SPAN, []).append(mid)
        sent = 0
        for connection, mids in by_gen.items():
            if self._send(current, ("ack", connection, mids)):
                sent += len(mids)
        self.counters.acked += sent
        return sent

    def wait_subscribed(self, timeout: float) -> bool:
        return self.subscribed_event.wait(timeout)

    def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.state != "connected":
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def snapshot(self) -> dict[str, Any]:
        return {"state": self.state, "pid": self.pid, **self.counters.__dict__}

    # ------------------------------------------------------------------ parent side
    def _spawn(self) -> _Incarnation:
        self._number += 1
        cmd_r, cmd_w = os.pipe()
        data_r, data_w = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", ""))
                                            if p)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "plugins.local.hub.receiver_process",
                 str(cmd_r), str(data_w), str(os.getpid())],
                pass_fds=(cmd_r, data_w), env=env, cwd=str(ROOT), stdin=subprocess.DEVNULL)
        finally:
            os.close(cmd_r)
            os.close(data_w)
        incarnation = _Incarnation(proc, Connection(cmd_w, readable=False),
                                   Connection(data_r, writable=False), self._number)
        self._send(incarnation, ("config", self._config))
        incarnation.reader = threading.Thread(target=self._read, args=(incarnation,),
                                              name="smartiot-receiver-read", daemon=True)
        incarnation.reader.start()
        log.info("receiver process %d started for %s (%s)", proc.pid, self.client_id,
                 ", ".join(self.filters))
        return incarnation

    def _send(self, incarnation: _Incarnation, message: tuple[Any, ...]) -> bool:
        try:
            with incarnation.send_lock:
                incarnation.commands.send(message)
            return True
        except (OSError, ValueError):
            return False  # the child is gone; the watcher starts another

    def _read(self, incarnation: _Incarnation) -> None:
        """The child's batches into ``on_batch``; its state and counters."""
        data = incarnation.data
        span = incarnation.number * _GEN_SPAN
        counters = self.counters
        while True:
            try:
                message = data.recv()
            except (EOFError, OSError):
                return
            except Exception:
                log.exception("the receiver process sent something unreadable")
                return
            kind = message[0]
            if kind == "batch":
                batch = Batch(-(span + message[1]), message[2])
                counters.received += len(batch.items)
                counters.batches += 1
                try:
                    self._on_batch(batch)
                except Exception:
                    log.exception("handling a batch of %d messages failed", len(batch.items))
            elif kind == "state":
                state, error = message[1], message[2]
                self.state_lag_s = max(0.0, time.time() - message[3]) if len(message) > 3 \
                    else 0.0
                if error and error != self.last_error:
                    log.warning("receiver %s: %s", self.client_id, error)
                if error:
                    self.last_error = error
                if state == "connected":
                    pass  # subscribed_event follows the SUBACK
                else:
                    self.subscribed_event.clear()
                self._set_state(state)
            elif kind == "subscribed":
                refused = message[1]
                if refused:
                    counters.refused = refused
                    self.last_error = refused
                self.subscribed_event.set()
            elif kind == "counters":
                incarnation.last = message[1]
                self._fold_counters(incarnation)
            elif kind == "bye":
                return

    def _fold_counters(self, incarnation: _Incarnation) -> None:
        last, done = incarnation.last, self._done
        c = self.counters
        c.dropped = int(done.get("dropped", 0) + last.get("dropped", 0))
        c.reconnects = int(done.get("reconnects", 0) + last.get("reconnects", 0))
        c.child_cpu_s = done.get("cpu_s", 0.0) + last.get("cpu_s", 0.0)

    def _watch(self) -> None:
        """Starts another child when one dies while the receiver runs."""
        delay = RESTART_MIN_S
        while not self._stopping.is_set():
            current = self._current
            if current is None:
                return
            code = current.proc.poll()
            if code is None:
                self._stopping.wait(0.2)
                if current.proc.poll() is None:
                    continue
                if self._stopping.is_set():
                    return
                code = current.proc.returncode
            if self._stopping.is_set():
                return
            if current.reader is not None:
                current.reader.join(2.0)  # what it sent before dying is handed over
            self._close(current)
            for key in ("dropped", "reconnects", "cpu_s"):
                self._done[key] = self._done.get(key, 0) + current.last.get(key, 0)
            self.counters.restarts += 1
            self.subscribed_event.clear()
            self._set_state("connecting")
            log.error("the receiver process %d of %s ended (exit %s); starting another in "
                      "%.1f s (restart %d)", current.proc.pid, self.client_id, code, delay,
                      self.counters.restarts)
            if self._stopping.wait(delay):
                return
            started = time.monotonic()
            try:
                self._current = self._spawn()
            except OSError as exc:
                log.error("could not start the receiver process: %s", exc)
                delay = min(delay * 2, RESTART_MAX_S)
                continue
            # a child that keeps dying at once is started less and less often
            delay = RESTART_MIN_S if time.monotonic() - started > 30 else min(
                delay * 2, RESTART_MAX_S)

    @staticmethod
    def _close(incarnation: _Incarnation) -> None:
        for connection in (incarnation.commands, incarnation.data):
            with contextlib.suppress(OSError):
                connection.close()

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                log.exception("a watcher of the receiver's state failed")


# ---------------------------------------------------------------------- child side
class _Child:
    """The child's MQTT subscriber (:mod:`plugins.local.hub.mqtt_subscriber`,
    its own thread), a sender thread for the batches, the main thread reading
    the parent's commands."""

    def __init__(self, config: dict[str, Any], data: Connection) -> None:
        self.config = config
        self.data = data
        self.data_lock = threading.Lock()
        self.generation = 0
        self.connected_once = False
        self.reconnects = 0
        self.dropped = 0
        self.pending: list[Item] = []
        self.ready: list[tuple[int, list[Item]]] = []
        self.buffered = 0
        self.cond = threading.Condition()
        self.flush_lock = threading.Lock()  # batches leave in order, from either thread
        self.full = threading.Event()
        self.stopping = False
        self.batch_max = int(config["batch_max"])
        self.limit = int(config["buffer_limit"])
        self.keep = list(config.get("keep") or ())
        self.transform: Callable[[list[Item]], Any] | None = None
        if config.get("transform"):
            import importlib

            module, _, name = str(config["transform"]).partition(":")
            self.transform = getattr(importlib.import_module(module), name)
        clean = bool(config["clean_session"])
        self.client = Subscriber(
            SubscriberConfig(
                host=config["host"], port=config["port"], client_id=config["client_id"],
                filters=list(config["filters"]), qos=int(config["qos"]),
                protocol=int(config["protocol"]), clean=clean,
                session_expiry_s=0 if clean else max(0, int(config["session_expiry_s"])),
                username=config["username"] or None, password=config["password"],
                tls_factory=config["tls_factory"], manual_ack=bool(config["manual_ack"])),
            on_messages=self._messages, on_connected=self._connected,
            on_subscribed=self._subscribed, on_lost=self._lost, on_refused=self._refused,
            on_failed=self._failed)
        self.last_failure = ""
        self.sender = threading.Thread(target=self._sender, name="receiver-sender", daemon=True)

    def send(self, message: tuple[Any, ...]) -> None:
        try:
            with self.data_lock:
                self.data.send(message)
        except OSError:
            os._exit(0)  # the parent is gone

    def counters(self) -> dict[str, Any]:
        return {"dropped": self.dropped, "reconnects": self.reconnects,
                "cpu_s": time.process_time()}

    def start(self) -> None:
        self.send(("state", "connecting", ""))
        time.sleep(random.uniform(0, 0.05))
        self.client.start()
        self.sender.start()

    # the subscriber's thread
    def _connected(self, generation: int) -> None:
        self.last_failure = ""
        with self.cond:  # what came on the old connection keeps its generation
            if self.pending:
                self.ready.append((self.generation, self.pending))
                self.pending = []
            self.generation = generation
        if self.connected_once:
            self.reconnects += 1
        self.connected_once = True
        self.send(("state", "connected", ""))

    def _refused(self, reason: str) -> None:
        self.send(("state", "disconnected", f"broker refused the connection: {reason}"))

    def _failed(self, reason: str) -> None:
        """Said once per new reason (attempts repeat every 1-30 s): the hub's
        status shows why it is not connected (a broker down, a certificate
        its CA does not trust) instead of only "connecting"."""
        if reason != self.last_failure:
            self.last_failure = reason
            self.send(("state", "connecting", reason, time.time()))

    def _subscribed(self, refused: str) -> None:
        self.send(("subscribed", refused))

    def _lost(self, reason: str) -> None:
        if not self.stopping:
            # What this connection delivered goes first: a broker shutting down
            # sends the Last Wills of every device just before it closes, and the
            # hub undoes them once they are in (plugins/local/hub/outage_wills.py).
            self.flush()
            self.send(("state", "connecting", reason, time.time()))

    def _messages(self, items: list[Item]) -> None:
        """One read's messages. Beyond the buffer a QoS 0 message is dropped
        (counted) unless it is on a ``keep`` filter; for those and QoS 1 this
        thread waits for room (at most BACKPRESSURE_WAIT_S a read, then they are
        taken anyway), so the broker's socket stops being read meanwhile."""
        cond = self.cond
        with cond:
            room = self.limit - self.buffered
            if len(items) <= room:
                self.pending.extend(items)
                self.buffered += len(items)
            else:
                # one wait for the whole read, not one a message: the
                # subscriber's thread must get back to its pings and acks
                deadline = time.monotonic() + BACKPRESSURE_WAIT_S
                for item in items:
                    self._one(item, deadline)
            if len(self.pending) >= self.batch_max:
                self.full.set()

    def _one(self, item: Item, deadline: float) -> None:
        """Called with ``cond`` held, the buffer full or nearly."""
        if self.buffered >= self.limit:
            if not item[3] and not any_matches(self.keep, item[0]):
                self.dropped += 1
                return
            while self.buffered >= self.limit and not self.stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.full.set()
                self.cond.wait(min(left, 0.5))
        self.pending.append(item)
        self.buffered += 1

    # the sender thread
    def _take(self) -> list[tuple[int, list[Item]]]:
        with self.cond:
            taken = self.ready
            if self.pending:
                taken.append((self.generation, self.pending))
            self.ready, self.pending = [], []
            return taken

    def _sender(self) -> None:
        wait = float(self.config["batch_wait_s"])
        last_counters = 0.0
        while True:
            self.full.wait(wait)
            self.full.clear()
            self.flush()
            now = time.monotonic()
            if now - last_counters >= COUNTERS_EVERY_S:
                last_counters = now
                self.send(("counters", self.counters()))
            if self.stopping:
                return

    def flush(self) -> None:
        with self.flush_lock:
            for generation, items in self._take():
                self.send(("batch", generation,
                           items if self.transform is None else self.transform(items)))
                with self.cond:
                    self.buffered -= len(items)
                    self.cond.notify_all()

    def ack(self, generation: int, mids: Sequence[int]) -> None:
        self.client.ack(generation, mids)  # a connection gone: the broker sends them again

    def stop(self) -> None:
        self.stopping = True
        with self.cond:
            self.cond.notify_all()
        self.client.stop()
        self.full.set()
        self.sender.join()  # then nothing else sends: the rest goes in order
        self.flush()
        self.send(("counters", self.counters()))
        self.send(("bye",))


def _watch_parent(parent: int) -> None:
    """Exits once the parent is gone, even when a process it forked still holds
    the command pipe open (so no end of file comes): polled once a second."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def child_main(argv: Sequence[str]) -> None:
    commands = Connection(int(argv[0]), writable=False)
    data = Connection(int(argv[1]), readable=False)
    threading.Thread(target=_watch_parent, args=(int(argv[2]),), name="receiver-parent",
                     daemon=True).start()
    try:
        kind, config = commands.recv()
    except (EOFError, OSError):
        os._exit(0)
    assert kind == "config"
    logging.basicConfig(level=logging.WARNING,
                        format="receiver %(process)d: %(levelname)s %(message)s")
    child = _Child(config, data)
    child.start()
    while True:
        try:
            message = commands.recv()
        except (EOFError, OSError):
            os._exit(0)  # the parent is gone: so is its hub
        if message[0] == "ack":
            child.ack(message[1], message[2])
        elif message[0] == "stop":
            child.stop()
            data.close()
            os._exit(0)


if __name__ == "__main__":
    child_main(sys.argv[1:])
