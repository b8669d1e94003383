"""Drive thousands of MQTT device sessions from one thread.

paho's own ``loop_forever``/``loop_start`` use select(), which stops near
1,024 sockets, and a thread per device does not scale either. Here every
client's socket sits in one ``selectors`` (epoll) selector and the loop calls
paho's ``loop_read``/``loop_write``/``loop_misc`` itself, using paho's socket
callbacks to know when a client wants to write. Connects are paced so a
10,000-device start is no connect storm for the broker.

QoS 0 publishes skip paho: the runtime builds the PUBLISH packets itself and
writes each session's packets of one loop pass in a single send (paho still owns
the connection, keepalive, subscriptions and QoS 1). Fast fleets (ticks shorter
than MIN_TELEMETRY_PERIOD_S) run their ticks in batches, so a device with several
readings due sends them together.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import random
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from core.protocol.limits import MAX_CLIENT_ID_BYTES, MAX_PUBLISH_PER_SECOND
from core.protocol.payloads import Status
from core.protocol.topics import status_topic, telemetry_topic
from simulator.agent import DeviceAgent
from simulator.broker import raise_fd_limit
from simulator.broker_auth import device_password
from simulator.faults import Outgoing
from simulator.source import FleetSource, shard_indexes
from simulator.target import BrokerTarget

log = logging.getLogger(__name__)

KEEPALIVE_S = 60
IO_WORKERS = 4  # blocking work (OTA downloads) never runs on the loop
_T = TypeVar("_T")
MAX_TICKS_PER_PASS = 4
MAX_BACKOFF_S = 30.0
# Telemetry runs at most this often (wall seconds) when the tick is shorter: a fast
# fleet then has several messages per device per pass, and they leave in one write.
# No effect at ordinary rates (the tick is 0.5 s); it is the most latency it adds.
MIN_TELEMETRY_PERIOD_S = 0.05


@dataclass
class TypeStats:
    devices: int = 0
    sent: int = 0
    dropped: int = 0
    reconnects: int = 0


@dataclass
class RuntimeStats:
    connected: int = 0
    ever_connected: int = 0
    published: int = 0
    produced: int = 0
    connect_errors: int = 0
    last_error: str = ""
    by_type: dict[str, TypeStats] = field(default_factory=dict)
    all_connected_after_s: float | None = None


@dataclass
class Session:
    index: int      # the device's index in the fleet
    position: int   # the session's index in this runtime (differs when sharded)
    device_id: str
    org: str
    device_type: str
    client: mqtt.Client
    agent: DeviceAgent
    connected: bool = False
    connecting: bool = False
    retry_at: float = 0.0
    backoff_s: float = 1.0
    down_until: float = 0.0
    has_connected: bool = False
    pending_reboot: bool = False
    attempted: bool = False
    queue: deque[tuple[str, bytes, int, bool]] = field(default_factory=deque)
    window_start: float = 0.0
    window_count: int = 0
    topic: str = ""             # telemetry topic, built (and validated) once
    write_selected: bool = False  # the selector watches this socket for EVENT_WRITE
    # QoS 0 PUBLISH packets built since the last flush; they leave in one send.
    out: list[bytes] = field(default_factory=list)
    header: bytes = b""         # the telemetry topic as a PUBLISH's variable header
    type_stats: TypeStats = field(default_factory=TypeStats)


class _Untracked:
    """Stands in for paho's MQTTMessageInfo on QoS 0 packets handed to paho: nobody
    waits on those, and building a real one (a Condition per message) was a fifth
    of the per-message cost at 10,000 messages/s."""

    rc = 0

    def _set_as_published(self) -> None:
        return None


_UNTRACKED = _Untracked()
_PUBLISH = 0x30


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _topic_header(topic: str) -> bytes:
    name = topic.encode()
    return len(name).to_bytes(2, "big") + name


def _fixed_header(retain: bool, length: int) -> bytes:
    """A QoS 0 PUBLISH's fixed header (MQTT 3.1.1 §3.3.1) for ``length`` bytes after it."""
    first = _PUBLISH | 1 if retain else _PUBLISH
    if length < 128:
        return bytes((first, length))
    if length < 16384:
        return bytes((first, length & 0x7F | 0x80, length >> 7))
    return bytes((first,)) + _remaining_length(length)


# QoS 0 fixed headers by remaining length, for the telemetry loop.
_FIXED_CACHED = 4096
_FIXED_HEADERS = [_fixed_header(False, n) for n in range(_FIXED_CACHED)]


class FleetRuntime:
    def __init__(
        self,
        source: FleetSource,
        target: BrokerTarget,
        *,
        speed: float = 1.0,
        tick_s: float | None = None,
        connect_rate: float = 1000.0,
        telemetry_qos: int = 0,
        seed: int = 0,
        agent_factory: Callable[[Session], DeviceAgent] | None = None,
        client_id_prefix: str = "",
        shard: tuple[int, int] = (1, 1),
        connect_timeout_s: float = 30.0,
        live: bool = False,
    ) -> None:
        """``shard=(i, n)`` runs only shard i's devices (whole blocks of the fleet,
        :func:`~simulator.source.shard_indexes`), so a fleet too big for one host
        is split across hosts against one broker; a shard steps only its own
        devices and they publish the same bytes as in one process, so the data
        does not depend on the split.

        ``live``: the fleet's time is today's (it was built for "now"), so it
        starts when its clock does, once the devices are connected: 10,000
        devices take about 11 s to connect, and a fleet that kept the time it
        was built for dated every reading 11 s in the past for the whole run
        (a 1 Hz fleet read "last seen 12 s ago" in the console)."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        shard_i, shard_n = shard
        if not 1 <= shard_i <= shard_n:
            raise ValueError(f"shard {shard_i}/{shard_n} must satisfy 1 <= i <= n")
        self.shard = shard
        if telemetry_qos not in (0, 1):
            raise ValueError("AWS IoT supports QoS 0 and 1 only")
        self.source = source
        self.target = target
        self.speed = speed
        self.connect_rate = connect_rate
        self.telemetry_qos = telemetry_qos
        self.start_s = source.start_s
        self.live = live
        # Fine enough for the fastest reporting interval (a 50 Hz device needs 20 ms
        # ticks), never finer than IoT Core's 100 publishes/s per connection allow.
        fastest = float(getattr(source, "min_interval_s", 1.0))
        self.tick_s = tick_s if tick_s is not None else max(0.01, min(0.5, fastest / 2))
        # When a tick is shorter than MIN_TELEMETRY_PERIOD_S of wall time (high speed
        # or short intervals), ticks run in batches spanning that period: the same
        # ticks, so the same messages, but several per device leave in one write.
        self._batch_wait_s = max(0.0, MIN_TELEMETRY_PERIOD_S * speed - self.tick_s)
        per_batch = int(MIN_TELEMETRY_PERIOD_S * speed / self.tick_s) + 1
        self._max_ticks_per_pass = max(MAX_TICKS_PER_PASS, 2 * per_batch)
        self.telemetry_writes = 0  # socket writes that carried buffered QoS 0 packets
        self._was_offline = source.offline_mask()
        self.stats = RuntimeStats()
        self._rng = random.Random(seed)
        self._selector = selectors.DefaultSelector()
        self._ssl = target.ssl_context()
        self._client_id_prefix = client_id_prefix
        self._agent_factory = agent_factory
        self.sessions: list[Session] = []
        self._by_index: dict[int, Session] = {}
        self._pending_connect: deque[int] = deque()
        self._backlog: set[int] = set()
        # Sessions with output queued since the last poll: written directly, and
        # watched for EVENT_WRITE only if the socket would block (see _flush_writes).
        self._unflushed: dict[int, Session] = {}
        self._retry: set[int] = set()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_ids = itertools.count()
        # Results of blocking work, handed back to this loop (deque appends are atomic).
        self._handoff: deque[Callable[[], None]] = deque()
        self._pool: ThreadPoolExecutor | None = None
        self._stop = False
        self._wall0 = 0.0
        # Simulated time starts once the fleet is connected (or the connect phase
        # gave up waiting), so no early reading depends on how fast sockets opened;
        # that is what keeps seeded runs byte-identical.
        self._clock0: float | None = None
        self._sim_end: float | None = None
        self.connect_timeout_s = connect_timeout_s
        self._next_tick = self.start_s
        self._misc_cursor = 0
        self._ticks = 0
        self._build_sessions()

    # ------------------------------------------------------------------ set-up
    def _build_sessions(self) -> None:
        indexes = shard_indexes(self.source, self.shard)
        if self.shard[1] > 1 and hasattr(self.source, "owned"):
            owned = np.zeros(self.source.size, dtype=bool)
            owned[indexes] = True
            self.source.owned = owned
        for index in indexes:
            device_id, org, device_type, _fw = self.source.device_info(index)
            client_id = f"{self._client_id_prefix}{device_id}"
            if len(client_id.encode()) > MAX_CLIENT_ID_BYTES:
                raise ValueError(f"client id {client_id[:40]!r}... is longer than AWS IoT's "
                                 f"{MAX_CLIENT_ID_BYTES} bytes; use a shorter prefix or id")
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                clean_session=False,
                protocol=mqtt.MQTTv311,
            )
            topic = telemetry_topic(org, device_id)
            session = Session(index, len(self.sessions), device_id, org, device_type, client,
                              agent=None,  # type: ignore[arg-type]
                              topic=topic, header=_topic_header(topic))
            session.agent = (self._agent_factory or self._default_agent)(session)
            client.user_data_set(session)
            if self.target.fleet_secret:
                client.username_pw_set(device_id,
                                       device_password(self.target.fleet_secret, device_id))
            elif self.target.username:
                client.username_pw_set(self.target.username, self.target.password)
            if self._ssl is not None:
                client.tls_set_context(self._ssl)
            will = Status("offline", reason="connection lost").encode()
            client.will_set(status_topic(org, device_id), will, qos=1, retain=True)
            client.on_connect = self._on_connect
            client.on_disconnect = self._on_disconnect
            client.on_message = self._on_message
            client.on_socket_open = self._on_socket_open
            client.on_socket_close = self._on_socket_close
            client.on_socket_register_write = self._on_register_write
            client.on_socket_unregister_write = self._on_unregister_write
            self.sessions.append(session)
            self._by_index[index] = session
            stats = self.stats.by_type.setdefault(device_type, TypeStats())
            stats.devices += 1
            session.type_stats = stats
            self._pending_connect.append(session.position)

    def _default_agent(self, session: Session) -> DeviceAgent:
        return DeviceAgent(self, session)

    # ------------------------------------------------------------------ clock
    def sim_now(self) -> float:
        if self._clock0 is None:
            return self.start_s
        return self.start_s + (time.monotonic() - self._clock0) * self.speed

    @property
    def clock_started(self) -> bool:
        return self._clock0 is not None

    # ------------------------------------------------------------------ socket callbacks
    def _on_socket_open(self, client: mqtt.Client, session: Session, sock: Any) -> None:
        session.write_selected = False
        self._selector.register(sock, selectors.EVENT_READ, session)

    def _on_socket_close(self, client: mqtt.Client, session: Session, sock: Any) -> None:
        session.write_selected = False
        session.out.clear()  # lost with the link, as paho drops its queued QoS 0 packets
        self._unflushed.pop(session.position, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)

    def _on_register_write(self, client: mqtt.Client, session: Session, sock: Any) -> None:
        # No epoll_ctl per publish: _flush_writes writes at the next poll and only
        # asks the selector for EVENT_WRITE when the socket buffer is full.
        if not session.write_selected:
            self._unflushed[session.position] = session

    def _on_unregister_write(self, client: mqtt.Client, session: Session, sock: Any) -> None:
        self._unflushed.pop(session.position, None)
        if session.write_selected:
            session.write_selected = False
            with contextlib.suppress(KeyError, ValueError):
                self._selector.modify(sock, selectors.EVENT_READ, session)

    def _flush_writes(self) -> None:
        """Write what publishes queued, one send per session for its QoS 0 packets;
        a socket that would block is left to the selector (EVENT_WRITE) until paho
        says its queue is empty."""
        pending, self._unflushed = self._unflushed, {}
        for session in pending.values():
            client = session.client
            sock = client.socket()
            if sock is None:
                session.out.clear()
                continue
            if session.out:
                self._write_out(session, sock)
            if not client.want_write():
                continue
            client.loop_write()
            if client.want_write() and not session.write_selected and client.socket() is sock:
                session.write_selected = True
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE,
                                          session)

    def _write_out(self, session: Session, sock: Any) -> None:
        """Hand the session's buffered QoS 0 packets to the socket in one send. paho
        owns the connection: when it has output of its own queued (or the socket is
        TLS, or would block), the bytes join the end of its queue instead, so the
        order on the wire is the order of the publish calls, and paho's loop_write
        meets any socket error and runs its usual connection-lost handling."""
        out = session.out
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self.telemetry_writes += 1
        client = session.client
        if self._ssl is None and not client.want_write():
            try:
                sent = sock.send(data)
            except OSError:  # would block, or a dead link: paho finds out below
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        client._packet_queue(_PUBLISH, data, 0, 0, _UNTRACKED)  # type: ignore[arg-type]

    def _flush_out(self, session: Session) -> None:
        """Move buffered QoS 0 packets behind paho's queue before paho queues more."""
        sock = session.client.socket()
        if sock is None:
            session.out.clear()
        else:
            self._write_out(session, sock)

    # ------------------------------------------------------------------ MQTT callbacks
    def _on_connect(self, client: mqtt.Client, session: Session, flags: Any, reason: Any,
                    properties: Any) -> None:
        session.connecting = False
        if reason.is_failure:
            self._note_error(session, f"broker refused {session.device_id}: {reason}")
            return
        session.connected = True
        session.backoff_s = 1.0
        if session.pending_reboot:
            session.pending_reboot = False
            self.source.reboot(session.index, self.sim_now())
            session.agent.on_boot()
        if session.has_connected:
            self.stats.by_type[session.device_type].reconnects += 1
        else:
            self.stats.ever_connected += 1
            session.has_connected = True
            if (self.stats.ever_connected == len(self.sessions)
                    and self.stats.all_connected_after_s is None):
                self.stats.all_connected_after_s = time.monotonic() - self._wall0
        self.stats.connected += 1
        session.agent.on_connected(bool(flags.session_present))

    def _on_disconnect(self, client: mqtt.Client, session: Session, flags: Any, reason: Any,
                       properties: Any) -> None:
        if session.connected:
            self.stats.connected -= 1
        elif session.connecting and not self._stop:
            # Closed before CONNACK: typically a refused certificate or credentials.
            self._note_error(session, f"{self.target.url} closed the connection of "
                             f"{session.device_id} before accepting it ({reason}); check "
                             "certificates and credentials")
        session.connected = False
        session.connecting = False
        if not self._stop:
            self._schedule_retry(session)

    def _on_message(self, client: mqtt.Client, session: Session, message: mqtt.MQTTMessage) -> None:
        try:
            session.agent.on_message(message.topic, bytes(message.payload))
        except Exception as exc:  # noqa: BLE001 - one bad message must not stop the fleet
            log.warning("device %s could not handle %s: %s", session.device_id, message.topic, exc)

    # ------------------------------------------------------------------ connecting
    def _schedule_retry(self, session: Session) -> None:
        delay = session.backoff_s * (0.5 + self._rng.random())  # jitter: no thundering herd
        session.retry_at = time.monotonic() + max(delay, session.down_until - time.monotonic())
        session.backoff_s = min(session.backoff_s * 2, MAX_BACKOFF_S)
        self._retry.add(session.position)

    def _connect(self, session: Session) -> None:
        session.connecting = True
        try:
            if session.attempted:
                session.client.reconnect()
            else:
                session.attempted = True
                session.client.connect(self.target.host, self.target.port, keepalive=KEEPALIVE_S)
        except (OSError, ValueError) as exc:
            session.connecting = False
            self._note_error(session, f"cannot reach broker {self.target.url}: {exc}")
            self._schedule_retry(session)

    def _note_error(self, session: Session, message: str) -> None:
        self.stats.connect_errors += 1
        self.stats.last_error = message

    def disconnect_abruptly(self, session: Session, down_for_s: float) -> None:
        """Lose the connection the way a dead link does (no DISCONNECT packet), so the
        broker publishes the Last Will; stay away for ``down_for_s`` wall seconds."""
        session.down_until = time.monotonic() + down_for_s
        sock = session.client.socket()
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.shutdown(socket.SHUT_RDWR)  # type: ignore[attr-defined]
        if not session.connected:
            session.retry_at = session.down_until
            self._retry.add(session.position)

    def call_later(self, delay_s: float, action: Callable[[], None]) -> None:
        """Run ``action`` on the runtime's thread after ``delay_s`` wall seconds."""
        heapq.heappush(self._timers, (time.monotonic() + delay_s, next(self._timer_ids), action))

    def run_blocking(self, work: Callable[[], _T],
                     done: Callable[[_T | BaseException], None]) -> None:
        """Run ``work`` on a small worker pool and ``done(result or exception)`` back
        on the runtime's thread: the loop that drives every device never blocks."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(IO_WORKERS, thread_name_prefix="smartiot-sim-io")

        def finished(future: Future[_T]) -> None:
            try:
                result: _T | BaseException = future.result()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                result = exc
            self._handoff.append(lambda: done(result))

        try:
            self._pool.submit(work).add_done_callback(finished)
        except RuntimeError as exc:  # pool shut down: the run is ending
            error: BaseException = exc
            self._handoff.append(lambda: done(error))

    def _run_handoffs(self) -> None:
        for _ in range(len(self._handoff)):
            action = self._handoff.popleft()
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - one device's error must not stop the fleet
                log.warning("simulated device action failed: %s", exc)

    def _run_timers(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _due, _id, action = heapq.heappop(self._timers)
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - one device's error must not stop the fleet
                log.warning("simulated device action failed: %s", exc)

    # ------------------------------------------------------------------ publishing
    def publish(self, session: Session, topic: str, payload: bytes, qos: int = 1,
                retain: bool = False) -> bool:
        """Publish within IoT Core's 100 messages/s per connection; excess waits its turn."""
        if not session.connected:
            return False
        now = time.monotonic()
        if now - session.window_start >= 1.0:
            session.window_start, session.window_count = now, 0
        if session.queue or session.window_count >= MAX_PUBLISH_PER_SECOND:
            session.queue.append((topic, payload, qos, retain))
            self._backlog.add(session.position)
            return True
        session.window_count += 1
        self._send(session, topic, payload, qos, retain)
        self.stats.published += 1
        return True

    def _send(self, session: Session, topic: str, payload: bytes, qos: int,
              retain: bool) -> None:
        """QoS 0 becomes a ready MQTT 3.1.1 PUBLISH packet in the session's buffer,
        written at the next poll together with the others of this pass; QoS 1 needs
        paho's bookkeeping (packet ids, retries) and takes the normal path, after
        whatever is buffered, so the order of publishes is kept."""
        if qos or session.client.socket() is None:
            if session.out:
                self._flush_out(session)
            session.client.publish(topic, payload, qos=qos, retain=retain)
            return
        header = session.header if topic == session.topic else _topic_header(topic)
        session.out.append(_fixed_header(retain, len(header) + len(payload)) + header + payload)
        self._unflushed[session.position] = session

    def _drain_backlog(self) -> None:
        now = time.monotonic()
        for index in list(self._backlog):
            session = self.sessions[index]
            if now - session.window_start >= 1.0:
                session.window_start, session.window_count = now, 0
            while session.queue and session.connected and (
                session.window_count < MAX_PUBLISH_PER_SECOND
            ):
                topic, payload, qos, retain = session.queue.popleft()
                session.window_count += 1
                self._send(session, topic, payload, qos, retain)
                self.stats.published += 1
            if not session.queue:
                self._backlog.discard(index)

    def publish_telemetry(self, session: Session, payload: bytes) -> None:
        if self.publish(session, session.topic, payload, qos=self.telemetry_qos):
            session.type_stats.sent += 1
        else:
            session.type_stats.dropped += 1

    def _publish_tick(self, messages: list[Outgoing]) -> None:
        """One tick's telemetry: ``publish_telemetry`` for each message, with the
        common case (QoS 0, connected, within the rate limit, nothing waiting)
        inlined: the simulator's hottest loop at high rates."""
        owned = self._by_index
        if self.telemetry_qos:
            for message in messages:
                session = owned.get(message.device)
                if session is not None:
                    self.publish_telemetry(session, message.payload)
            return
        now = time.monotonic()
        unflushed = self._unflushed
        fixed = _FIXED_HEADERS
        published = 0
        for message in messages:
            session = owned.get(message.device)
            if session is None:
                continue
            if not session.connected:
                session.type_stats.dropped += 1
                continue
            if now - session.window_start >= 1.0:
                session.window_start, session.window_count = now, 0
            if session.queue or session.window_count >= MAX_PUBLISH_PER_SECOND:
                self.publish_telemetry(session, message.payload)  # waits its turn
                continue
            session.window_count += 1
            payload, header = message.payload, session.header
            length = len(header) + len(payload)
            session.out += (fixed[length] if length < _FIXED_CACHED
                            else _fixed_header(False, length), header, payload)
            unflushed[session.position] = session
            session.type_stats.sent += 1
            published += 1
        self.stats.published += published

    # ------------------------------------------------------------------ main loop
    def run(self, duration_s: float | None = None,
            progress: Callable[[RuntimeStats, float], None] | None = None,
            progress_every_s: float = 1.0) -> RuntimeStats:
        raise_fd_limit(len(self.sessions) + 1024)
        self._wall0 = time.monotonic()
        self._next_tick = self.start_s
        # The run ends in *simulated* time: every tick up to start + duration runs,
        # and none after it, however the wall clock and the host's load fall, so two
        # seeded runs publish exactly the same messages.
        self._sim_end = None if duration_s is None else self.start_s + duration_s
        connect_limit = self._wall0 + self.connect_timeout_s + len(self.sessions) / max(
            self.connect_rate, 1.0)
        next_progress = self._wall0 + progress_every_s
        connect_budget = 0.0
        last = self._wall0
        try:
            while not self._stop:
                now = time.monotonic()
                if self._clock0 is None and (
                    self.stats.ever_connected == len(self.sessions) or now >= connect_limit
                ):
                    self._clock0 = now
                    if self.live:
                        self._begin_now()
                if self._sim_end is not None and self._next_tick > self._sim_end + 1e-9:
                    break
                connect_budget = min(connect_budget + (now - last) * self.connect_rate,
                                     self.connect_rate)
                last = now
                while self._pending_connect and connect_budget >= 1:
                    connect_budget -= 1
                    session = self.sessions[self._pending_connect.popleft()]
                    if session.down_until > now:  # offline by a fault from the start
                        session.retry_at = session.down_until
                        self._retry.add(session.position)
                    else:
                        self._connect(session)
                self._poll(self._idle_timeout())
                if self._clock0 is not None:
                    self._tick_telemetry()
                self._drain_backlog()
                self._run_timers(now)
                if self._handoff:
                    self._run_handoffs()
                self._housekeeping(now)
                if progress is not None and now >= next_progress:
                    progress(self.stats, now - self._wall0)
                    next_progress = now + progress_every_s
        finally:
            self.shutdown()
        return self.stats

    def stop(self) -> None:
        self._stop = True

    def _begin_now(self) -> None:
        """A live fleet's clock starts: the fleet begins at the current whole
        second instead of the one it was built at, its schedules with it."""
        lag = float(int(time.time())) - self.start_s
        begin_at = getattr(self.source, "begin_at", None)
        if lag <= 0 or begin_at is None:
            return
        begin_at(self.start_s + lag)
        self.start_s += lag
        self._next_tick += lag
        if self._sim_end is not None:
            self._sim_end += lag

    def _poll(self, timeout: float) -> None:
        if self._unflushed:
            self._flush_writes()
        for key, events in self._selector.select(timeout):
            session: Session = key.data
            client = session.client
            if events & selectors.EVENT_READ:
                client.loop_read(max_packets=100)
            if events & selectors.EVENT_WRITE and client.socket() is not None:
                client.loop_write()

    def _telemetry_ready_at(self) -> float:
        """Simulated time at which the next batch of ticks runs."""
        ready = self._next_tick + self._batch_wait_s
        return ready if self._sim_end is None else min(ready, self._sim_end)

    def _idle_timeout(self) -> float:
        """How long the poll may wait for sockets: up to 5 ms, less when telemetry
        is due sooner, nothing when it is due (or late) already."""
        if self._clock0 is None:
            return 0.005
        wait = (self._telemetry_ready_at() - self.sim_now()) / self.speed
        return min(0.005, max(0.0, wait))

    def _tick_telemetry(self) -> None:
        """Run the fleet on a quantised sim clock (start + k * tick_s): the same ticks
        on every run are what makes a seeded simulation reproducible to the byte."""
        sim_now = self.sim_now()
        if self._sim_end is not None:
            sim_now = min(sim_now, self._sim_end)
        if sim_now < self._telemetry_ready_at() - 1e-9:
            return
        # A bounded number of ticks per pass: when the host is overloaded the simulated
        # clock falls behind instead of queueing a burst with no network I/O between.
        owned = self._by_index
        # A Fleet encodes a tick's messages in one batch (byte-identical to
        # Telemetry.encode), for its owned devices only; other sources go per message.
        tick_messages = getattr(self.source, "tick_messages", None)
        for _ in range(self._max_ticks_per_pass):
            if self._next_tick > sim_now:
                break
            t = self._next_tick
            if tick_messages is not None:
                batch = tick_messages(t)
            else:
                batch = [Outgoing(t, index, telemetry.encode())
                         for index, telemetry in self.source.tick(t) if index in owned]
            self.stats.produced += len(batch)
            self._publish_tick(self._without_rebooting(
                self.source.apply_message_faults(t, batch)))
            self._apply_connection_faults()
            self._ticks += 1
            self._next_tick = self.start_s + self._ticks * self.tick_s

    def _without_rebooting(self, batch: list[Outgoing]) -> list[Outgoing]:
        """A device that a reboot fault takes down this tick is going down, not
        reporting: its reading of this tick (already numbered from a fresh seq) is
        counted as dropped. Sent, it made the hub see two restarts for one reboot,
        since seq starts over once more when the device is back (``pending_reboot``)."""
        rebooting = self.source.last_rebooted
        if not len(rebooting):
            return batch
        down = set(rebooting.tolist())
        kept = []
        for message in batch:
            session = self._by_index.get(message.device) if message.device in down else None
            if session is None:
                kept.append(message)
            else:
                session.type_stats.dropped += 1
        return kept

    def _apply_connection_faults(self) -> None:
        for index in self.source.last_rebooted.tolist():
            rebooted = self._by_index.get(index)
            if rebooted is not None:
                rebooted.agent.on_connection_event("reboot", 0.0)
        offline = self.source.offline_mask()
        changed = offline != self._was_offline
        if changed.any():
            for index in changed.nonzero()[0].tolist():
                session = self._by_index.get(index)
                if session is None:
                    continue
                if offline[index]:
                    # Down until the fault clears; the fleet says when.
                    self.disconnect_abruptly(session, float("inf"))
                else:
                    session.down_until = 0.0
                    session.backoff_s = 1.0
                    session.retry_at = time.monotonic()
                    self._retry.add(session.position)
            self._was_offline = offline

    def _housekeeping(self, now: float) -> None:
        # Keepalives: loop_misc for a slice of sessions per pass, so each client
        # is visited about every second without a 10,000-item sweep per loop.
        n = len(self.sessions)
        for _ in range(min(n, max(1, n // 100))):
            session = self.sessions[self._misc_cursor % n]
            self._misc_cursor += 1
            if session.connected:
                session.client.loop_misc()
        for index in [i for i in self._retry if self.sessions[i].retry_at <= now]:
            session = self.sessions[index]
            if session.connected:
                self._retry.discard(index)
                continue
            if session.connecting or now < session.down_until:
                continue
            self._retry.discard(index)
            self._connect(session)

    def shutdown(self) -> None:
        """Disconnect cleanly: a clean DISCONNECT means no Last Will, so publish
        offline ourselves first, as a device that is switched off politely would."""
        self._stop = True
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._flush_writes()  # buffered telemetry leaves before the goodbyes
        t = self.sim_now()
        for message in self.source.flush(t):  # burst/reorder hold-backs
            held = self._by_index.get(message.device)
            if held is not None and held.connected:
                held.client.publish(held.topic, message.payload, qos=self.telemetry_qos)
        for session in self.sessions:
            if session.connected:
                session.client.publish(
                    status_topic(session.org, session.device_id),
                    Status("offline", reason="simulation ended").encode(), qos=1, retain=True,
                )
                session.client.disconnect()
        end = time.monotonic() + 2.0
        while time.monotonic() < end and any(s.client.socket() for s in self.sessions):
            self._poll(0.01)
        for session in self.sessions:
            if session.client.socket() is not None:
                session.client.loop_write()
        self._selector.close()
