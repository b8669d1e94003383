"""What a simulated device does besides sending telemetry: the device side of
the protocol. It obeys shadow desired state and reports it back, answers
commands, and goes through connection faults (drops, reboots, dead battery).

Its state lives outside the MQTT client, so it survives reconnects the way a
real device's configuration survives a lost link.
"""

from __future__ import annotations

import json
import logging
import random
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from core.errors import ValidationError
from core.protocol.payloads import (
    CommandResponse,
    ProtocolError,
    Status,
    decode_command_request,
    decode_json_object,
)
from core.protocol.topics import (
    ShadowOp,
    command_request_topic,
    command_response_topic,
    parse_shadow_topic,
    shadow_topic,
    status_topic,
)
from simulator.ota.agent import OtaAgent

if TYPE_CHECKING:
    from simulator.runtime import FleetRuntime, Session

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 3600.0
REBOOT_DOWN_S = 3.0
ANSWER_MEMORY = 64
# An unanswered shadow get is asked again after a delay drawn uniformly from
# [0, ceiling] ("full jitter"), the ceiling doubling from SHADOW_GET_RETRY_S to
# SHADOW_GET_RETRY_MAX_S: 10,000 devices retrying every 5 s on the dot kept a
# busy hub's request queue full of their own duplicates (each answered get
# brought another update), where spreading and slowing the retries lets it drain.
SHADOW_GET_RETRY_S = 5.0
SHADOW_GET_RETRY_MAX_S = 300.0


class DeviceAgent:
    def __init__(self, runtime: FleetRuntime, session: Session) -> None:
        self.runtime = runtime
        self.session = session
        self.shadow_version = 0
        self.reported: dict[str, Any] = {}
        self.identify_until = 0.0
        self.commands_answered = 0
        # Commands arrive at least once (QoS 1, persistent session): remember the
        # answers to recent request ids so a redelivered request is answered
        # again but not executed twice (a redelivered reboot must not loop).
        self._answered: OrderedDict[str, bytes] = OrderedDict()
        self.shadow_synced = False
        # Seeded per device (fleet seed and device id), so retries and client
        # tokens are the same on every run and in any shard, whatever order the
        # devices' timers fire in.
        self._shadow_rng = random.Random(
            f"shadow:{getattr(runtime.source, 'seed', 0)}:{session.device_id}")
        # clientTokens of the gets sent since the last connect; the first answer
        # carrying one of them syncs the device, later ones (duplicates, answers
        # to older gets, a console's own gets) are ignored
        self._pending_gets: set[str] = set()
        self._gets_sent = 0
        self._get_generation = 0
        self.shadow_gets_sent = 0  # every get published, retries included
        self.shadow_retry_delays: list[float] = []  # the last few, for diagnosis
        self.ota = OtaAgent(runtime, session, self)

    # ------------------------------------------------------------------ connection
    def subscriptions(self) -> list[tuple[str, int]]:
        """At most 8 filters in one SUBSCRIBE, as AWS IoT allows."""
        s = self.session
        return [
            (command_request_topic(s.org, s.device_id), 1),
            (shadow_topic(s.device_id, ShadowOp.UPDATE, "delta"), 1),
            (shadow_topic(s.device_id, ShadowOp.GET, "accepted"), 1),
            (shadow_topic(s.device_id, ShadowOp.GET, "rejected"), 1),
        ]

    def on_connected(self, session_present: bool) -> None:
        s = self.session
        # Persistent sessions keep subscriptions, but re-subscribing is cheap and
        # covers a broker that restarted without persistence.
        s.client.subscribe(self.subscriptions())
        _id, _org, device_type, firmware = self.runtime.source.device_info(s.index)
        ts_ms = int(self.runtime.sim_now() * 1000)
        self.runtime.publish(s, status_topic(s.org, s.device_id),
                             Status("online", ts_ms, device_type, firmware).encode(),
                             qos=1, retain=True)
        self.shadow_synced = False
        self._pending_gets.clear()
        self._get_generation += 1  # a retry timer of the previous link does nothing
        self._ask_for_shadow(self._get_generation, 0)
        self.ota.on_connected()

    def on_boot(self) -> None:
        """Power is back after a reset: the bootloader picks the image to run."""
        self.ota.on_boot()

    def _ask_for_shadow(self, generation: int, attempt: int) -> None:
        """Ask for the shadow until someone answers: a request published before the
        shadow service subscribed is simply lost, and a busy one answers late. Real
        firmware (the AWS IoT Device SDKs) retries with exponential backoff and
        jitter, so a fleet's retries neither line up nor outpace the service."""
        s = self.session
        if self.shadow_synced or generation != self._get_generation or not s.connected:
            return
        token = self._next_token()
        self._pending_gets.add(token)
        self.shadow_gets_sent += 1
        body = json.dumps({"clientToken": token}, separators=(",", ":")).encode()
        self.runtime.publish(s, shadow_topic(s.device_id, ShadowOp.GET), body, qos=1)
        delay = self.shadow_retry_delay(attempt)
        self.shadow_retry_delays = [*self.shadow_retry_delays[-15:], delay]
        self.runtime.call_later(delay,
                                lambda: self._ask_for_shadow(generation, attempt + 1))

    def shadow_retry_delay(self, attempt: int) -> float:
        """Seconds (wall, as before) before get number ``attempt + 1`` (0: after the first
        get): full jitter under a ceiling of 2 x 5 s doubling per attempt, at most
        5 min, so the first retry comes after 5 s on average, as before."""
        ceiling = min(SHADOW_GET_RETRY_MAX_S, SHADOW_GET_RETRY_S * 2.0 ** (attempt + 1))
        return self._shadow_rng.uniform(0.0, ceiling)

    def _next_token(self) -> str:
        """Unique per get of this device (a counter) and not guessable from the id
        alone; from the device's seeded generator, so runs stay reproducible."""
        self._gets_sent += 1
        return f"g{self._gets_sent}-{self._shadow_rng.getrandbits(48):012x}"

    def on_connection_event(self, kind: str, down_wall_s: float) -> None:
        """A reboot drops the link without DISCONNECT (the broker sends the Last Will);
        seq and uptime restart when the device is back."""
        if kind in ("reboot", "reboot-command"):
            # seq and uptime restart when the device boots again, i.e. at reconnect.
            self.ota.on_power_down()
            self.session.pending_reboot = True
            self.runtime.disconnect_abruptly(self.session, REBOOT_DOWN_S / self.runtime.speed)
        else:
            self.runtime.disconnect_abruptly(self.session, down_wall_s)

    # ------------------------------------------------------------------ messages
    def on_message(self, topic: str, payload: bytes) -> None:
        s = self.session
        if topic == command_request_topic(s.org, s.device_id):
            self._handle_command(payload)
            return
        if self.ota.on_message(topic, payload):
            return
        parsed = parse_shadow_topic(topic)
        if parsed is None or parsed.thing != s.device_id:
            return
        if parsed.op is ShadowOp.UPDATE and parsed.suffix == "delta":
            doc = decode_json_object(payload, f"shadow delta for {s.device_id}")
            self._apply_desired(doc.get("state", {}), doc.get("version"))
        elif parsed.op is ShadowOp.GET and parsed.suffix in ("accepted", "rejected"):
            doc = decode_json_object(payload, f"shadow answer for {s.device_id}")
            if doc.get("clientToken") not in self._pending_gets:
                return  # a duplicate, an answer to an older get, or someone else's get
            self._pending_gets.clear()
            self.shadow_synced = True
            if parsed.suffix == "accepted":
                state = doc.get("state")
                state = state if isinstance(state, dict) else {}
                delta = state.get("delta") or {}
                self._apply_desired(delta, doc.get("version"),
                                    always_report=not delta
                                    and not self._shadow_has_reported(state.get("reported")))
            else:
                # No shadow yet (404): report our defaults so one gets created.
                self._apply_desired({}, None, always_report=True)

    def _shadow_has_reported(self, reported: Any) -> bool:
        """Whether the stored shadow already says what this device would report:
        then an update would only cost the hub a write (and everyone a delta check)."""
        if not isinstance(reported, dict):
            return False
        self._refresh_reported()
        return all(reported.get(k) == v for k, v in self.reported.items())

    def _apply_desired(self, desired: Any, version: Any, *, always_report: bool = False) -> None:
        if not isinstance(desired, dict):
            return
        if isinstance(version, int):
            if version < self.shadow_version:
                return  # stale delta delivered out of order; IoT Core documents this
            self.shadow_version = version
        source, index = self.runtime.source, self.session.index
        if "interval" in desired:
            try:
                source.set_interval(index, _interval(desired["interval"]))
            except ValidationError as exc:
                log.info("%s ignores desired interval: %s", self.session.device_id, exc)
        if isinstance(desired.get("setpoints"), dict):
            numeric = {k: float(v) for k, v in desired["setpoints"].items()
                       if isinstance(v, int | float) and not isinstance(v, bool)}
            source.apply_setpoints(index, numeric)
            self.reported["setpoints"] = {**self.reported.get("setpoints", {}), **numeric}
        if desired or always_report:
            self.report()

    def _refresh_reported(self) -> None:
        _id, _org, _type, firmware = self.runtime.source.device_info(self.session.index)
        self.reported["interval"] = self.runtime.source.interval(self.session.index)
        self.reported["firmware"] = firmware

    def report(self) -> None:
        s = self.session
        self._refresh_reported()
        body = json.dumps({"state": {"reported": self.reported}}, separators=(",", ":"),
                          sort_keys=True).encode()
        self.runtime.publish(s, shadow_topic(s.device_id, ShadowOp.UPDATE), body, qos=1)

    def _handle_command(self, payload: bytes) -> None:
        s = self.session
        try:
            request = decode_command_request(payload, where=f"command to {s.device_id}")
        except ProtocolError as exc:
            log.info("%s", exc)
            return
        topic = command_response_topic(s.org, s.device_id)
        cached = self._answered.get(request.request_id)
        if cached is not None:
            self.runtime.publish(s, topic, cached, qos=1)
            return
        t = self.runtime.sim_now()
        ok, error = True, ""
        result: dict[str, Any] = {}
        if request.command == "ping":
            result = {"pong": True, "uptime": self.runtime.source.uptime_s(s.index, t)}
        elif request.command == "identify":
            seconds = float(request.params.get("seconds", 10))
            self.identify_until = t + seconds
            result = {"blinking": True, "seconds": seconds}
        elif request.command == "set-interval":
            try:
                seconds = _interval(request.params.get("seconds"))
            except ValidationError as exc:
                ok, error = False, str(exc)
            else:
                self.runtime.source.set_interval(s.index, seconds)
                result = {"interval": seconds}
        elif request.command == "reboot":
            result = {"rebooting": True}
        else:
            ok, error = False, f"unknown command {request.command!r}"
        response = CommandResponse(request.request_id, request.command, ok, result, error,
                                   int(t * 1000)).encode()
        self._answered[request.request_id] = response
        while len(self._answered) > ANSWER_MEMORY:
            self._answered.popitem(last=False)
        self.runtime.publish(s, topic, response, qos=1)
        self.commands_answered += 1
        if ok and request.command == "reboot":
            # Reboot after this callback returns, so the request is acknowledged
            # (PUBACK) and the answer sent before the link goes down.
            self.runtime.call_later(0.2, lambda: self.on_connection_event("reboot-command", 0.0))
        elif ok and request.command == "set-interval":
            self.report()


def _interval(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"interval {value!r} must be a number of seconds")
    if not MIN_INTERVAL_S <= float(value) <= MAX_INTERVAL_S:
        raise ValidationError(
            f"interval {value} s is outside {MIN_INTERVAL_S:g}-{MAX_INTERVAL_S:g} s"
        )
    return float(value)
