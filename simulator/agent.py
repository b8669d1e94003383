"""What a simulated device does besides sending telemetry: the device side of
the protocol. It obeys shadow desired state and reports it back, answers
commands, and goes through connection faults (drops, reboots, dead battery).

Its state lives outside the MQTT client, so it survives reconnects the way a
real device's configuration survives a lost link.
"""

from __future__ import annotations

import json
import logging
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
SHADOW_GET_ATTEMPTS = 5
SHADOW_GET_RETRY_S = 5.0


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
        self._ask_for_shadow(SHADOW_GET_ATTEMPTS)
        self.ota.on_connected()

    def on_boot(self) -> None:
        """Power is back after a reset: the bootloader picks the image to run."""
        self.ota.on_boot()

    def _ask_for_shadow(self, attempts_left: int) -> None:
        """Ask for the shadow until someone answers: a request published before the
        shadow service subscribed is simply lost, and real firmware retries too."""
        s = self.session
        if self.shadow_synced or attempts_left <= 0 or not s.connected:
            return
        self.runtime.publish(s, shadow_topic(s.device_id, ShadowOp.GET), b"{}", qos=1)
        self.runtime.call_later(SHADOW_GET_RETRY_S,
                                lambda: self._ask_for_shadow(attempts_left - 1))

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
            self.shadow_synced = True
        if parsed.op is ShadowOp.GET and parsed.suffix == "accepted":
            doc = decode_json_object(payload, f"shadow document for {s.device_id}")
            state = doc.get("state", {})
            self._apply_desired(state.get("delta") or {}, doc.get("version"),
                                always_report=True)
        elif parsed.op is ShadowOp.GET and parsed.suffix == "rejected":
            # No shadow yet (404): report our defaults so one gets created.
            self._apply_desired({}, None, always_report=True)

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

    def report(self) -> None:
        s = self.session
        _id, _org, _type, firmware = self.runtime.source.device_info(s.index)
        self.reported["interval"] = self.runtime.source.interval(s.index)
        self.reported["firmware"] = firmware
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
