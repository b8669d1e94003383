"""Commands to devices over AWS IoT: Publish to the protocol's command topic
(``cmd/{organization}/{device}/req``, core.protocol.topics) through the IoT
Data API, QoS 1, with a request id the device echoes in its answer.

The IoT Data API only publishes; answers come back on
``cmd/{organization}/{device}/res`` over MQTT, which no Lambda hears. An IoT
rule puts each one into the command-answers table
(plugins/aws/dynamodb/command_answers.py); with ``answers`` this channel
records the request before publishing and reads the device's answer item
until it is in (every 50 ms at first, then up to every 250 ms: a few dozen
reads for a ten-second timeout). Anyone else hearing answers can hand
them to ``on_response``. A command not answered within its timeout resolves
as TIMEOUT, so the future never hangs."""

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
from core.protocol.topics import command_request_topic, command_response_topic
from plugins.aws.dynamodb.command_answers import DynamoCommandAnswers

log = logging.getLogger(__name__)

QOS = 1  # at least once: a device dedupes by request id
FIRST_POLL_S = 0.05
MAX_POLL_S = 0.25


class IotDataCommandChannel(CommandChannel):
    def __init__(self, iot_data: Any, registry: DeviceRegistry,
                 answers: DynamoCommandAnswers | None = None) -> None:
        self._iot_data = iot_data
        self._registry = registry
        self._answers = answers
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
            if self._answers is not None:  # before the publish: a fast answer finds it
                self._answers.expect(request_id, device_id, command)
            self._iot_data.publish(topic=command_request_topic(device.organization, device_id),
                                   qos=QOS, payload=payload)
        except Exception:
            with self._lock:
                self._pending.pop(request_id, None)
            raise
        timer = threading.Timer(timeout_s, self._expire, (request_id, timeout_s))
        timer.daemon = True
        timer.start()
        if self._answers is not None:
            threading.Thread(target=self._poll, name=f"command-{request_id[:8]}", daemon=True,
                             args=(request_id, command_response_topic(device.organization,
                                                                      device_id),
                                   device_id, time.monotonic() + timeout_s)).start()
        return future

    def _poll(self, request_id: str, topic: str, device_id: str, deadline: float) -> None:
        """Read the device's answer item until it is there, the request is
        resolved otherwise (on_response, the timeout) or the deadline passed."""
        assert self._answers is not None
        delay = FIRST_POLL_S
        while time.monotonic() < deadline:
            with self._lock:
                if request_id not in self._pending:
                    return
            try:
                found = self._answers.find(request_id, device_id)
            except Exception as exc:  # noqa: BLE001 - throttled or cut: read again
                log.warning("reading the answer to command %s failed: %s", request_id, exc)
                found = None
            if found is not None:
                self.on_response(topic, found.payload)
                return
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, MAX_POLL_S)

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
