"""A subscribe-only MQTT client on one thread, for the receiver's child process.

It does what the receiver used paho for, and no more: connect (3.1.1 or 5, a
clean or persistent session, credentials, TLS), subscribe, hand over what the
broker sends a whole ``recv`` at a time (:func:`plugins.local.hub.mqtt_wire.parse`),
acknowledge QoS 1 messages when told, keep the connection alive, and make it
again after a loss (1 s, then doubling up to 30 s, as paho was set to). Every
socket operation happens on the one thread (OpenSSL's objects are not to be
read and written from two): :meth:`ack` queues and wakes it through a socket pair.

The callbacks run on that thread; ``on_messages`` may block (the child's
backpressure), which stops reading, so TCP pushes back to the broker.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from plugins.local.hub import mqtt_wire as wire

log = logging.getLogger(__name__)

RECV_BYTES = 1 << 18
PIECES_FROM = 1 << 16  # an unfinished packet this long is gathered, not re-joined per read
CONNECT_TIMEOUT_S = 10.0
SEND_TIMEOUT_S = 10.0
RECONNECT_MIN_S, RECONNECT_MAX_S = 1.0, 30.0
SUBSCRIBE_ID = 1

# (topic, payload, received_ms, packet id: 0 for QoS 0)
Message = tuple[str, bytes, int, int]


@dataclass
class SubscriberConfig:
    host: str
    port: int
    client_id: str
    filters: Sequence[str]
    qos: int = 1
    protocol: int = wire.MQTT_V5
    clean: bool = True
    session_expiry_s: int = 0
    keepalive: int = 30
    username: str | None = None
    password: str | None = None
    tls_factory: Callable[[], ssl.SSLContext] | None = None
    manual_ack: bool = False


class ConnectionLost(Exception):
    pass


class Subscriber:
    """``on_connected(generation)`` after each CONNACK that accepts (before any
    message of that connection); ``on_subscribed(refused)`` after the SUBACK,
    with what the broker refused ("" when nothing); ``on_lost(reason)`` when a
    connection that was up ends; ``on_refused(reason)`` when the broker refuses
    the connection; ``on_failed(reason)`` when an attempt fails before the broker
    answers (unreachable, TLS not trusted); ``on_messages(messages)`` for what
    one read brought. With ``manual_ack`` a QoS 1 message is acknowledged only
    through :meth:`ack`; without, as soon as ``on_messages`` returns (and its
    packet id is 0)."""

    def __init__(self, config: SubscriberConfig, *,
                 on_messages: Callable[[list[Message]], None],
                 on_connected: Callable[[int], None] = lambda generation: None,
                 on_subscribed: Callable[[str], None] = lambda refused: None,
                 on_lost: Callable[[str], None] = lambda reason: None,
                 on_refused: Callable[[str], None] = lambda reason: None,
                 on_failed: Callable[[str], None] = lambda reason: None) -> None:
        self.config = config
        self.on_messages = on_messages
        self.on_connected = on_connected
        self.on_subscribed = on_subscribed
        self.on_lost = on_lost
        self.on_refused = on_refused
        self.on_failed = on_failed
        self.generation = 0  # connections accepted so far; a token's connection
        self._lock = threading.Lock()
        self._acks: list[int] = []
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)  # a full pair already means "wake up"
        self._thread = threading.Thread(target=self._run, name="receiver-mqtt", daemon=True)
        self._sock: socket.socket | None = None
        self._early = b""  # what came after the CONNACK in the same read

    # ------------------------------------------------------------------ API
    def start(self) -> None:
        self._thread.start()

    def ack(self, generation: int, mids: Sequence[int]) -> bool:
        """Queue PUBACKs for the connection ``generation``; False (nothing
        queued) when that connection is gone: the broker sends those again."""
        with self._lock:
            if generation != self.generation or self._sock is None:
                return False
            self._acks.extend(mids)
        self._wake()
        return True

    def stop(self, timeout_s: float = 5.0) -> None:
        """Acknowledgements already queued go out, then DISCONNECT (a
        persistent session stays on the broker), then the thread ends."""
        self._stopping.set()
        self._wake()
        self._thread.join(timeout_s)
        for end in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                end.close()

    # ------------------------------------------------------------------ the thread
    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _run(self) -> None:
        delay = RECONNECT_MIN_S
        while not self._stopping.is_set():
            try:
                sock, ack = self._open()
            except (OSError, wire.WireError, ConnectionLost) as exc:
                self.on_failed(f"cannot connect to {self.config.host}:{self.config.port}: "
                               f"{exc or type(exc).__name__}")
                self._stopping.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            if ack.code != 0:
                self._close(sock)
                words = wire.reason_text(ack.code) + (f" ({ack.reason})" if ack.reason else "")
                self.on_refused(words)
                self._stopping.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            delay = RECONNECT_MIN_S
            with self._lock:
                self.generation += 1
                self._acks.clear()  # they were for the connection before
                self._sock = sock
            reason = ""
            try:
                self.on_connected(self.generation)
                keepalive = ack.server_keepalive or self.config.keepalive
                self._read(sock, keepalive)
            except (OSError, wire.WireError, ConnectionLost) as exc:
                reason = str(exc) or type(exc).__name__
            except Exception as exc:  # a bug must not leave the child deaf: log, reconnect
                log.exception("the MQTT subscriber's connection failed unexpectedly")
                reason = f"unexpected error: {exc!r}"
            finally:
                with self._lock:
                    self._sock = None
                self._close(sock, goodbye=self._stopping.is_set())
            if not self._stopping.is_set():
                self.on_lost(reason)
                self._stopping.wait(delay)

    def _open(self) -> tuple[socket.socket, wire.ConnAck]:
        c = self.config
        sock: socket.socket = socket.create_connection((c.host, c.port), CONNECT_TIMEOUT_S)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if c.tls_factory is not None:
                sock = c.tls_factory().wrap_socket(sock, server_hostname=c.host)
            sock.sendall(wire.connect_packet(
                c.client_id, protocol=c.protocol, clean=c.clean, keepalive=c.keepalive,
                username=c.username, password=c.password,
                session_expiry_s=0 if c.clean else c.session_expiry_s))
            data = b""
            while (end := _end_of_first(data)) is None:
                chunk = sock.recv(RECV_BYTES)
                if not chunk:
                    raise ConnectionLost("the broker closed the connection before its CONNACK")
                data += chunk
            first = wire.parse(data[:end], c.protocol).controls
            if not first or first[0].kind != wire.CONNACK:
                raise wire.WireError("the broker's first packet was not a CONNACK")
            ack = wire.connack(first[0].body, c.protocol)
            # a broker may follow its CONNACK at once with the session's messages
            self._early = data[end:]
            return sock, ack
        except BaseException:
            self._close(sock)
            raise

    def _read(self, sock: socket.socket, keepalive: int) -> None:
        """Until the connection ends. The socket is non-blocking: a TLS socket
        that select() calls readable may hold no application data (a session
        ticket, a key update), and a blocking read would wait for the next
        message, acks and pings held up behind it."""
        c = self.config
        protocol = c.protocol
        parse = wire.parse
        sock.setblocking(False)
        tls = isinstance(sock, ssl.SSLSocket)
        send = functools.partial(_send_all, sock)
        send(wire.subscribe_packet(SUBSCRIBE_ID, list(c.filters), c.qos, protocol=protocol))
        # a ping once three quarters of the keepalive passed without sending:
        # the broker allows one and a half before it gives up on us
        ping_every = max(0.5, keepalive * 0.75)
        last_out = last_in = time.monotonic()
        ping_at = 0.0
        rest = self._early
        self._early = b""
        pending_read = bool(rest)
        pieces: list[bytes] = []  # a large packet arriving over several reads
        have = need = 0
        watch = [sock, self._wake_r]
        while True:
            now = time.monotonic()
            with self._lock:
                acks, self._acks = self._acks, []
            if acks:
                send(wire.puback_packets(acks))
                last_out = now
            if self._stopping.is_set():
                return
            if now - last_out >= ping_every:
                send(wire.PINGREQ)
                last_out = now
                if not ping_at:
                    ping_at = now
            if not pending_read and not (tls and sock.pending()):  # type: ignore[attr-defined]
                wait = max(0.0, min(1.0, last_out + ping_every - now))
                ready, _, _ = select.select(watch, (), (), wait)
                if self._wake_r in ready:
                    with contextlib.suppress(OSError):
                        while self._wake_r.recv(4096):
                            pass
                if sock not in ready:
                    # nothing waiting to be read: only now can silence mean the link is gone
                    if ping_at and time.monotonic() - max(ping_at, last_in) > keepalive:
                        raise ConnectionLost(f"no answer from the broker for {keepalive} s")
                    continue
            if pending_read:
                data, pending_read = rest, False
            else:
                try:
                    chunk = sock.recv(RECV_BYTES)
                except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    continue
                if not chunk:
                    raise ConnectionLost("the broker closed the connection")
                last_in = time.monotonic()
                if need:  # the rest of a large packet: joined once, when all there
                    pieces.append(chunk)
                    have += len(chunk)
                    if have < need:
                        continue
                    data, pieces, have, need = b"".join(pieces), [], 0, 0
                else:
                    data = rest + chunk if rest else chunk
            try:
                parsed = parse(data, protocol, int(time.time() * 1000))
            except wire.WireError as exc:
                if exc.messages:  # what came whole before the bad packet is the hub's
                    self._deliver(exc.messages)
                raise
            rest = data[parsed.rest:]
            if len(rest) > PIECES_FROM:
                end = wire.declared_end(rest)
                if end is not None and end > len(rest):
                    pieces, have, need = [rest], len(rest), end
                    rest = b""
            if parsed.messages:
                self._deliver(parsed.messages)
            for control in parsed.controls:
                kind = control.kind
                if kind == wire.PINGRESP:
                    ping_at = 0.0
                elif kind == wire.SUBACK:
                    packet_id, codes = wire.suback(control.body, protocol)
                    if packet_id == SUBSCRIBE_ID:
                        refused = [f"broker refused the subscription to {f}: "
                                   f"{wire.reason_text(code, protocol)}"
                                   for f, code in zip(c.filters, codes, strict=False)
                                   if code >= 0x80]
                        self.on_subscribed("; ".join(refused))
                elif kind == wire.DISCONNECT:
                    raise ConnectionLost(wire.disconnect_reason(control.body, protocol))
                elif kind == wire.PUBACK:
                    pass  # the subscriber publishes nothing; a stray one is harmless
                else:
                    raise wire.WireError(f"unexpected packet type {kind} from the broker")

    def _deliver(self, messages: list[Message]) -> None:
        if self.config.manual_ack:
            self.on_messages(messages)
            return
        mids = [m[3] for m in messages if m[3]]
        if mids:
            messages = [(t, p, r, 0) for t, p, r, _ in messages]
        self.on_messages(messages)
        if mids:
            with self._lock:
                self._acks.extend(mids)

    @staticmethod
    def _close(sock: socket.socket, goodbye: bool = False) -> None:
        if goodbye:
            with contextlib.suppress(OSError):
                sock.sendall(wire.DISCONNECT_PACKET)
        with contextlib.suppress(OSError):
            sock.close()


def _send_all(sock: socket.socket, data: bytes, timeout_s: float = SEND_TIMEOUT_S) -> None:
    """``sendall`` for the non-blocking socket: a broker that takes nothing for
    ``timeout_s`` is a lost connection."""
    view = memoryview(data)
    deadline = time.monotonic() + timeout_s
    while view:
        try:
            view = view[sock.send(view):]
            continue
        except (BlockingIOError, ssl.SSLWantWriteError):
            readable = False
        except ssl.SSLWantReadError:
            readable = True
        left = deadline - time.monotonic()
        if left <= 0:
            raise ConnectionLost(f"the broker took nothing for {timeout_s:.0f} s")
        if readable:
            select.select([sock], (), (), left)
        else:
            select.select((), [sock], (), left)


def _end_of_first(data: bytes) -> int | None:
    """Where the first packet in ``data`` ends; None until it is all there."""
    end = wire.declared_end(data)
    return end if end is not None and end <= len(data) else None


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT's filter rules: ``+`` one level, ``#`` the rest (the parent too);
    wildcards at the start do not match topics that begin with ``$``."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    parts, levels = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(parts):
        if part == "#":
            return True
        if i >= len(levels) or (part != "+" and part != levels[i]):
            return False
    return len(parts) == len(levels)


def any_matches(filters: Sequence[str], topic: str) -> bool:
    return any(topic_matches(f, topic) for f in filters)


__all__ = ["Message", "Subscriber", "SubscriberConfig", "any_matches", "topic_matches"]
