"""The hub's heartbeat, and how a console tells whether the hub is there.

A console whose hub runs elsewhere (``hub = false``) used to know nothing of
it: the status bar said "Broker disconnected" and "— msg/s" while data
arrived, and a stopped hub went unnoticed. The hub now publishes a retained
status on ``smartiot/hub/status`` every few seconds (its rates, backlog and
what is wrong), with a retained Last Will saying "offline", so every console
reads the hub's health from the broker it already uses, and a console that
starts later gets the latest word at once. A hub that hangs without dropping
its connection stops beating: three missed beats make it "silent".
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core import __version__
from core.model.events import HubStatus

HEARTBEAT_EVERY_S = 5.0
MISSED_BEATS = 3  # a hub silent this many intervals is shown as gone
MAX_PAYLOAD = 16 * 1024
MAX_TEXT = 300


class HeartbeatError(ValueError):
    """A heartbeat that cannot be read; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class HubBeat:
    """One heartbeat (``state`` "online") or the hub's goodbye / Last Will ("offline")."""

    state: str
    client_id: str = ""
    ts_ms: int | None = None
    started_at_ms: int | None = None
    version: str = ""
    interval_s: float = HEARTBEAT_EVERY_S
    connection: str = ""
    messages_per_s: float = 0.0
    readings_per_s: float = 0.0
    inbox: int = 0
    shed_overload: int = 0
    hub_lost: int = 0
    degraded: tuple[str, ...] = ()
    reason: str = ""
    shed_quarantine: int = 0
    shed_receiver: int = 0

    def encode(self) -> bytes:
        body: dict[str, Any] = {"state": self.state, "client_id": self.client_id}
        if self.ts_ms is not None:
            body["ts"] = self.ts_ms
        if self.started_at_ms is not None:
            body["started_at"] = self.started_at_ms
        if self.state == "online":
            body.update(version=self.version, interval_s=self.interval_s,
                        connection=self.connection,
                        messages_per_s=round(self.messages_per_s, 2),
                        readings_per_s=round(self.readings_per_s, 2),
                        inbox=self.inbox, shed_overload=self.shed_overload,
                        shed_quarantine=self.shed_quarantine,
                        shed_receiver=self.shed_receiver,
                        hub_lost=self.hub_lost, degraded=list(self.degraded))
        if self.reason:
            body["reason"] = self.reason
        return json.dumps(body, separators=(",", ":")).encode()


def online_beat(client_id: str, started_at_ms: int, snapshot: dict[str, Any],
                *, now_ms: int, interval_s: float = HEARTBEAT_EVERY_S) -> HubBeat:
    """The heartbeat for ``Hub.snapshot()`` as it is now."""
    reasons = [snapshot["degraded"].removeprefix("degraded: ")] if snapshot["degraded"] else []
    return HubBeat("online", client_id, now_ms, started_at_ms, __version__, interval_s,
                   str(snapshot["connection"]), float(snapshot["messages_per_s"]),
                   float(snapshot["readings_per_s"]), int(snapshot["inbox"]),
                   int(snapshot["shed_overload"]), int(snapshot.get("hub_lost", 0)),
                   tuple(reasons), shed_quarantine=int(snapshot.get("shed_quarantine", 0)),
                   shed_receiver=int((snapshot.get("receiver") or {}).get("dropped", 0)))


def last_will(client_id: str, started_at_ms: int) -> HubBeat:
    """What the broker says for a hub whose connection died (kill -9, a crash,
    the network): fixed at connect, so it carries no time of death."""
    return HubBeat("offline", client_id, None, started_at_ms, reason="connection lost")


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        raise HeartbeatError(f"hub heartbeat: {key!r} must be text")
    return "".join(ch for ch in value[:MAX_TEXT] if ch.isprintable())


def _number(body: dict[str, Any], key: str, default: float = 0.0) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise HeartbeatError(f"hub heartbeat: {key!r} must be a finite number")
    return float(value)


def _optional_ms(body: dict[str, Any], key: str) -> int | None:
    if body.get(key) is None:
        return None
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise HeartbeatError(f"hub heartbeat: {key!r} must be epoch milliseconds")
    return value


def decode_beat(payload: bytes) -> HubBeat:
    """Anything on the topic is read or refused with a HeartbeatError (the topic is
    the hub's alone by the broker's ACL, but a console never trusts the wire)."""
    if len(payload) > MAX_PAYLOAD:
        raise HeartbeatError(f"hub heartbeat: {len(payload):,} bytes is more than "
                             f"{MAX_PAYLOAD:,}")
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise HeartbeatError(f"hub heartbeat is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise HeartbeatError("hub heartbeat must be a JSON object")
    state = body.get("state")
    if state not in ("online", "offline"):
        raise HeartbeatError(f"hub heartbeat: state must be online or offline, not {state!r}")
    degraded = body.get("degraded", [])
    if not isinstance(degraded, list) or not all(isinstance(d, str) for d in degraded):
        raise HeartbeatError("hub heartbeat: 'degraded' must be a list of text")
    interval = _number(body, "interval_s", HEARTBEAT_EVERY_S)
    return HubBeat(
        state, _text(body, "client_id"), _optional_ms(body, "ts"),
        _optional_ms(body, "started_at"), _text(body, "version"),
        min(max(interval, 0.5), 3600.0), _text(body, "connection"),
        max(0.0, _number(body, "messages_per_s")), max(0.0, _number(body, "readings_per_s")),
        max(0, int(_number(body, "inbox"))), max(0, int(_number(body, "shed_overload"))),
        max(0, int(_number(body, "hub_lost"))),
        tuple(d[:MAX_TEXT] for d in degraded[:10]), _text(body, "reason"),
        max(0, int(_number(body, "shed_quarantine"))),
        max(0, int(_number(body, "shed_receiver"))))


def _clock_text(epoch_ms: int | None) -> str:
    if epoch_ms is None:
        return ""
    return time.strftime("%H:%M:%S", time.localtime(epoch_ms / 1000))


@dataclass
class HubPresence:
    """A console's view of the hub, from its heartbeats; thread-safe enough for
    one writer (the network thread) and one checker (a timer thread): every
    field is replaced, never mutated in place.

    ``state``: "unknown" until a first word (or until three intervals pass
    with none: then "silent", as no hub may be running at all), "online",
    "offline" (Last Will or a stop) or "silent" (beats stopped)."""

    clock: Callable[[], float] = time.monotonic
    state: str = "unknown"
    beat: HubBeat | None = None
    last_seen: float | None = None
    since: float = field(default=0.0)
    went_away_ms: int | None = None

    def __post_init__(self) -> None:
        self.since = self.clock()

    def heard(self, beat: HubBeat) -> bool:
        """A message on the hub's topic; returns whether the state changed."""
        now = self.clock()
        before = self.state
        self.beat = beat
        self.last_seen = now
        if beat.state == "online":
            self.state = "online"
            self.went_away_ms = None
        else:
            self.state = "offline"
            self.went_away_ms = beat.ts_ms or int(time.time() * 1000)
        return self.state != before

    def check(self) -> bool:
        """Whether beats stopped (call every second or so); True when that changed
        the state."""
        now = self.clock()
        interval = self.beat.interval_s if self.beat is not None else HEARTBEAT_EVERY_S
        limit = MISSED_BEATS * interval
        if self.state == "online" and self.last_seen is not None and \
                now - self.last_seen > limit:
            self.state = "silent"
            self.went_away_ms = int((time.time() - (now - self.last_seen)) * 1000)
            return True
        if self.state == "unknown" and now - self.since > limit:
            self.state = "silent"
            return True
        return False

    def detail(self) -> str:
        beat = self.beat
        if self.state == "online" and beat is not None:
            started = _clock_text(beat.started_at_ms)
            return (f"hub {beat.client_id} {beat.version}".strip()
                    + (f", running since {started}" if started else ""))
        if self.state == "offline" and beat is not None:
            at = _clock_text(beat.ts_ms) or _clock_text(self.went_away_ms)
            when = f" at {at}" if at else ""
            if beat.reason == "stopped":
                return f"the hub was stopped{when}"
            return f"the hub went offline{when}" + (f" ({beat.reason})" if beat.reason else "")
        if self.state == "silent":
            if beat is None:
                return "no hub has reported on this broker"
            return f"no heartbeat from the hub since {_clock_text(self.went_away_ms)}"
        return "waiting for the hub's first heartbeat"

    def event(self, connection: str) -> HubStatus:
        """The live event for the status bar; rates only while the hub is online."""
        beat = self.beat if self.state == "online" else None
        if beat is None:
            return HubStatus(connection=connection, hub=self.state, hub_detail=self.detail())
        return HubStatus(connection=connection, messages_per_s=beat.messages_per_s,
                         readings_per_s=beat.readings_per_s,
                         degraded=("degraded: " + "; ".join(beat.degraded)
                                   if beat.degraded else ""),
                         shed_overload=beat.shed_overload, inbox=beat.inbox,
                         hub=self.state, hub_detail=self.detail(),
                         shed_quarantine=beat.shed_quarantine,
                         shed_receiver=beat.shed_receiver)
