"""Commands to devices over AWS IoT: Publish to the protocol's command topic
(``cmd/{organization}/{device}/req``, core.protocol.topics) through the IoT
Data API, QoS 1, with a request id the device echoes in its answer.

The IoT Data API only publishes; answers come back on
``cmd/{organization}/{device}/res`` over MQTT. Whatever subscribes there for
this console (an MQTT-over-WebSocket link, or an IoT rule forwarding answers)
hands them to ``on_response``; a command not answered within its timeout
resolves as TIMEOUT, so the future never hangs."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import Future
from typing import Any

from core.errors import NotFound, SmartIotError
from core.ports.commands import CommandChannel, CommandOutcome, CommandResult
from core.ports.registry import DeviceRegistry
from core.protocol.payloads import (
    COMMANDS,
    CommandRequest,
    ProtocolError,
    decode_command_response,
)
from core.protocol.topics import command_request_topic

log = logging.getLogger(__name__)

QOS = 1  # at least once: a device dedupes by request id


class IotDataCommandChannel(CommandChannel):
    def __init__(self, iot_data: Any, registry: DeviceRegistry) -> None:
        self._iot_data = iot_data
        self._registry = registry
        self._pending: dict[str, tuple[Future[CommandResult], str, str, float]] = {}
        self._lock = threading.Lock()

    def send(self, device_id: str, command: str, params: dict[str, Any] | None = None, *,
             timeout_s: float = 10.0) -> Future[CommandResult]:
        if command not in COMMANDS:
            raise SmartIotError(f"unknown command {command!r}; devices understand "
                                f"{', '.join(COMMANDS)}")
        device = self._registry.find(device_id)
        if device is None:
            raise NotFound(f"device {device_id!r} is not registered")
        request_id = uuid.uuid4().hex
        payload = CommandRequest(request_id, command, dict(params or {}),
                                 int(time.time() * 1000)).encode()
        future: Future[CommandResult] = Future()
        with self._lock:
            self._pending[request_id] = (future, device_id, command, time.monotonic())
        try:
            self._iot_data.publish(topic=command_request_topic(device.organization, device_id),
                                   qos=QOS, payload=payload)
        except Exception:
            with self._lock:
                self._pending.pop(request_id, None)
            raise
        timer = threading.Timer(timeout_s, self._expire, (request_id, timeout_s))
        timer.daemon = True
        timer.start()
        return future

    def on_response(self, topic: str, payload: bytes) -> None:
        """An answer from ``cmd/+/+/res``; someone else's or a late one is ignored."""
        try:
            response = decode_command_response(payload, where=f"answer on {topic}")
        except ProtocolError as exc:
            log.info("ignored command answer: %s", exc)
            return
        with self._lock:
            entry = self._pending.pop(response.request_id, None)
        if entry is None:
            return
        future, device_id, command, started = entry
        result = {**response.result, **({"error": response.error} if response.error else {})}
        future.set_result(CommandResult(
            response.request_id, device_id, command,
            CommandOutcome.OK if response.ok else CommandOutcome.ERROR, result,
            (time.monotonic() - started) * 1000))

    def _expire(self, request_id: str, timeout_s: float) -> None:
        with self._lock:
            entry = self._pending.pop(request_id, None)
        if entry is None:
            return
        future, device_id, command, _started = entry
        future.set_result(CommandResult(request_id, device_id, command, CommandOutcome.TIMEOUT,
                                        {"error": f"no answer within {timeout_s:g} s"}))
