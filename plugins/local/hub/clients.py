"""The console's side: commands and desired-state changes travel over MQTT.

Whether the hub runs in this process or on a server for the whole team, a
console sends commands and shadow updates the way any IoT application does —
over the broker — so both set-ups exercise the same path. Commands are
written to the command log before they are published: a console that crashes
right after "Send" still knows what it asked for.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from core.errors import ConcurrentModification, NotFound, SmartIotError
from core.model import CommandRecord, CommandStatus
from core.model.events import CommandChanged, ShadowChanged
from core.model.timeutil import utcnow
from core.ports.commands import CommandChannel, CommandOutcome, CommandResult
from core.ports.hub import CommandLog, ShadowStore
from core.ports.registry import DeviceRegistry
from core.ports.shadows import ShadowDocument, ShadowService
from core.protocol.payloads import (
    COMMANDS,
    CommandRequest,
    ProtocolError,
    decode_command_response,
    decode_json_object,
)
from core.protocol.topics import (
    COMMAND_RESPONSE_FILTER,
    ShadowOp,
    command_request_topic,
    parse_device_topic,
    parse_shadow_topic,
    shadow_topic,
)
from core.services.event_bus import EventBus
from plugins.local.hub.mqtt_link import MqttLink

log = logging.getLogger(__name__)

CLIENT_FILTERS = (
    COMMAND_RESPONSE_FILTER,
    "$aws/things/+/shadow/update/accepted",
    "$aws/things/+/shadow/update/rejected",
)
SHADOW_TIMEOUT_S = 10.0
CONNECT_WAIT_S = 10.0
LEFTOVER_GRACE_S = 5.0


# paho's words for a connection that simply went away, which tell a person nothing
_UNSPECIFIED = ("Unspecified error", "")


def not_connected(what: str, link: MqttLink) -> str:
    """Why a request could not go out, in words a person can act on: which
    broker, what paho said when it is more than its "Unspecified error" (a
    refused login, a refused subscription), and what to do now."""
    reason = link.last_error
    why = "" if reason in _UNSPECIFIED else f" ({reason})"
    return (f"{what}: not connected to the broker at {link.host}:{link.port}{why}. "
            "Check that the broker is running and reachable from this computer; the "
            "console reconnects by itself, then try again.")


class ConsoleClient:
    """Routes the answers that arrive on the console's MQTT link."""

    def __init__(self, link_factory: Any, bus: EventBus) -> None:
        self.bus = bus
        self.link: MqttLink = link_factory(CLIENT_FILTERS, self._on_message)
        self.commands: MqttCommandChannel | None = None
        self.shadows: MqttShadowService | None = None

    def start(self) -> None:
        self.link.start()

    def stop(self) -> None:
        if self.commands is not None:
            self.commands.close()
        self.link.stop()

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic.startswith("cmd/") and self.commands is not None:
            self.commands.on_response(topic, payload)
        elif topic.startswith("$aws/") and self.shadows is not None:
            self.shadows.on_reply(topic, payload)


class MqttCommandChannel(CommandChannel):
    def __init__(self, client: ConsoleClient, log_store: CommandLog, registry: DeviceRegistry,
                 *, user: str) -> None:
        self._client = client
        self._log = log_store
        self._registry = registry
        self._user = user
        self._pending: dict[str, tuple[Future[CommandResult], CommandRecord, float]] = {}
        # unanswered commands of other processes, closed once their time is up
        self._leftovers: list[tuple[CommandRecord, datetime]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._expire_leftovers()
        self._sweeper = threading.Thread(target=self._sweep, name="command-timeouts",
                                         daemon=True)
        self._sweeper.start()

    def _expire_leftovers(self) -> None:
        """Commands a previous run sent but never saw answered are closed as timed out,
        not resent: a reboot sent yesterday must not fire again today. A command still
        within its timeout may belong to a console that is running (the same log is
        shared in a team, and `smartiot devices command` starts while the window is
        open): it is left to that console and closed here only if it is still
        unanswered when its time is up."""
        now = utcnow()
        for record in self._log.unfinished():
            deadline = record.created_at + timedelta(seconds=record.timeout_s + LEFTOVER_GRACE_S)
            if deadline <= now:
                self._close_leftover(record)
            else:
                self._leftovers.append((record, deadline))

    def _close_leftover(self, record: CommandRecord) -> None:
        self._log.update(replace(record, status=CommandStatus.TIMEOUT, completed_at=utcnow(),
                                 error="the console stopped before an answer arrived"))

    def _sweep_leftovers(self) -> None:
        now = utcnow()
        due = [r for r, deadline in self._leftovers if deadline <= now]
        if not due:
            return
        self._leftovers = [(r, d) for r, d in self._leftovers if d > now]
        for record in due:
            try:
                current = self._log.get(record.request_id)
            except SmartIotError:
                continue
            if not current.status.is_final:
                self._close_leftover(current)

    def send(self, device_id: str, command: str, params: dict[str, Any] | None = None, *,
             timeout_s: float = 10.0) -> Future[CommandResult]:
        if command not in COMMANDS:
            raise SmartIotError(f"unknown command {command!r}; devices understand "
                                f"{', '.join(COMMANDS)}")
        device = self._registry.find(device_id)
        if device is None:
            raise NotFound(f"device {device_id!r} is not registered")
        # A command-line client sends right after it starts: wait for the link (and
        # its answer subscription) instead of publishing into a connection not yet up.
        if not self._client.link.wait_subscribed(min(timeout_s, CONNECT_WAIT_S)):
            raise SmartIotError(not_connected(f"{command} not sent to {device_id}",
                                              self._client.link))
        request_id = uuid.uuid4().hex
        record = CommandRecord(request_id, device_id, command, dict(params or {}), self._user,
                               timeout_s=timeout_s)
        self._log.add(record)  # persisted before it goes on the wire
        # Marked sent *before* publishing: a fast device can answer before publish()
        # returns, and its answer must not be overwritten by a late "sent".
        sent = replace(record, status=CommandStatus.SENT)
        self._log.update(sent)
        future: Future[CommandResult] = Future()
        with self._lock:
            self._pending[request_id] = (future, sent, time.monotonic())
        payload = CommandRequest(request_id, command, dict(params or {}),
                                 int(time.time() * 1000)).encode()
        self._client.link.publish(command_request_topic(device.organization, device_id),
                                  payload, qos=1)
        self._client.bus.publish([CommandChanged(sent)])
        return future

    def on_response(self, topic: str, payload: bytes) -> None:
        try:
            parsed = parse_device_topic(topic)
            response = decode_command_response(payload, where=f"answer on {topic}")
        except ProtocolError as exc:
            log.info("ignored command answer: %s", exc)
            return
        except Exception:  # noqa: BLE001 - a malformed topic from a device
            return
        with self._lock:
            entry = self._pending.pop(response.request_id, None)
        if entry is None or parsed is None:
            return  # someone else's command, or one that already timed out
        future, record, started = entry
        latency = (time.monotonic() - started) * 1000
        status = CommandStatus.OK if response.ok else CommandStatus.ERROR
        done = replace(record, status=status, response=response.result, error=response.error,
                       completed_at=utcnow())
        self._finish(future, done, CommandResult(
            response.request_id, record.device_id, record.command,
            CommandOutcome.OK if response.ok else CommandOutcome.ERROR,
            {**response.result, **({"error": response.error} if response.error else {})},
            latency))

    def _finish(self, future: Future[CommandResult], record: CommandRecord,
                result: CommandResult) -> None:
        try:
            self._log.update(record)
        except Exception:
            log.exception("could not record the answer to %s", record.request_id)
        self._client.bus.publish([CommandChanged(record)])
        if not future.done():
            future.set_result(result)

    def _sweep(self) -> None:
        while not self._closed.wait(0.2):
            if self._leftovers:
                try:
                    self._sweep_leftovers()
                except Exception:
                    log.exception("could not close unanswered commands of an earlier run")
            now = time.monotonic()
            with self._lock:
                expired = [(rid, entry) for rid, entry in self._pending.items()
                           if now - entry[2] >= entry[1].timeout_s]
                for rid, _entry in expired:
                    self._pending.pop(rid, None)
            for rid, (future, record, _started) in expired:
                done = replace(record, status=CommandStatus.TIMEOUT, completed_at=utcnow(),
                               error=f"no answer within {record.timeout_s:g} s")
                self._finish(future, done, CommandResult(
                    rid, record.device_id, record.command, CommandOutcome.TIMEOUT,
                    {"error": done.error}, None))

    def close(self) -> None:
        self._closed.set()


class MqttShadowService(ShadowService):
    def __init__(self, client: ConsoleClient, store: ShadowStore) -> None:
        self._client = client
        self._store = store
        self._waiting: dict[str, Future[tuple[str, dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def get(self, device_id: str) -> ShadowDocument:
        return self._store.get(device_id) or ShadowDocument(device_id)

    def update_desired(self, device_id: str, desired: dict[str, Any], *,
                       expected_version: int | None = None) -> ShadowDocument:
        # A command-line client updates right after it starts: wait for the link
        # (and its reply subscription) as send_command does.
        if not self._client.link.wait_subscribed(CONNECT_WAIT_S):
            raise SmartIotError(not_connected(f"desired state of {device_id} not sent",
                                              self._client.link))
        token = uuid.uuid4().hex[:16]
        request: dict[str, Any] = {"state": {"desired": desired}, "clientToken": token}
        if expected_version is not None:
            request["version"] = expected_version
        future: Future[tuple[str, dict[str, Any]]] = Future()
        with self._lock:
            self._waiting[token] = future
        self._client.link.publish(shadow_topic(device_id, ShadowOp.UPDATE),
                                  json.dumps(request).encode(), qos=1)
        try:
            suffix, body = future.result(timeout=SHADOW_TIMEOUT_S)
        except TimeoutError:
            raise SmartIotError(
                f"no answer from the shadow service for {device_id} within "
                f"{SHADOW_TIMEOUT_S:g} s; is the hub running and connected?") from None
        finally:
            with self._lock:
                self._waiting.pop(token, None)
        if suffix == "rejected":
            if body.get("code") == 409:
                current = self.get(device_id)
                raise ConcurrentModification(
                    f"the shadow of {device_id} changed meanwhile (now version "
                    f"{current.version}); reload and apply your change again")
            raise SmartIotError(f"shadow update for {device_id} rejected: "
                                f"{body.get('code')} {body.get('message')}")
        return self.get(device_id)

    def on_reply(self, topic: str, payload: bytes) -> None:
        """Answers to this console's own updates, and other updates of the
        devices a view shows in full (``LiveFeed.focus``: a device's detail,
        where its shadow is shown). Every device's accepted update reaches this
        subscription; at 10,000 devices reading each one back from the store on
        paho's thread cost the console's process about 5 % of a core of GIL,
        for a document nobody was looking at (a detail opened later reads it)."""
        parsed = parse_shadow_topic(topic)
        if parsed is None:
            return
        with self._lock:
            awaited = bool(self._waiting)
        if not awaited and parsed.thing not in self._client.bus.focused:
            return
        try:
            body = decode_json_object(payload, "shadow reply")
        except ProtocolError:
            return
        token = body.get("clientToken")
        with self._lock:
            future = self._waiting.get(token) if isinstance(token, str) else None
        if future is not None and not future.done():
            future.set_result((parsed.suffix, body))
        if parsed.suffix == "accepted" and parsed.thing in self._client.bus.focused:
            document = self._store.get(parsed.thing)
            if document is not None:
                self._client.bus.publish([ShadowChanged(document)])
