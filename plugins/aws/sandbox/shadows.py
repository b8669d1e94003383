"""IoT Core's device shadow service over MQTT, for the sandbox: devices ask
for and report their shadow on ``$aws/things/{thing}/shadow/...`` and the
shadow they see is the one the API reads and writes through IoT Data (moto's
server), as on AWS.

- A device's ``shadow/get`` is answered on ``get/accepted`` with the document
  (with ``state.delta``), or ``get/rejected`` 404 when there is none yet.
- A device's ``shadow/update`` becomes UpdateThingShadow; a refused one is
  answered on ``update/rejected`` with IoT Core's code (400, 404, 409).
- Every accepted update — the device's or the API's (desired state from a
  console) — is published on ``update/accepted``, and when it set desired
  state that differs from the reported one, the difference on
  ``update/delta``: that is how a device learns a console's change.

Classic (unnamed) shadows only, as the project's devices use. The device-side
requests are served on a worker thread, never in the MQTT client's loop."""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)

REQUESTS = ("$aws/things/+/shadow/get", "$aws/things/+/shadow/update")
_CODES = {"ResourceNotFoundException": 404, "ConflictException": 409,
          "InvalidRequestException": 400}


def _topic(thing: str, op: str, suffix: str) -> str:
    return f"$aws/things/{thing}/shadow/{op}/{suffix}"


class ShadowService:
    def __init__(self, iot_data: Any, iot: Any, broker: tuple[str, int]) -> None:
        self.iot_data = iot_data
        self.iot = iot
        self.broker = broker
        self.answered = 0
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                   client_id=f"sandbox-shadows-{uuid.uuid4().hex[:8]}")
        self._subscribed = threading.Event()
        self._client.on_connect = lambda c, *a: c.subscribe([(t, 1) for t in REQUESTS])
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_message = self._on_message
        self._work: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._serve, name="sandbox-shadows", daemon=True)
        self._original: Callable[..., Any] | None = None

    def start(self, timeout_s: float = 10.0) -> ShadowService:
        from moto.iotdata.models import IoTDataPlaneBackend

        self._client.connect(*self.broker, keepalive=30)
        self._client.loop_start()
        self._worker.start()
        if not self._subscribed.wait(timeout_s):
            self.stop()
            raise RuntimeError(f"the shadow service could not subscribe on "
                               f"{self.broker[0]}:{self.broker[1]}")
        original = IoTDataPlaneBackend.update_thing_shadow
        service = self

        def update_thing_shadow(backend: Any, thing_name: str, payload: str,
                                shadow_name: str | None) -> Any:
            shadow = original(backend, thing_name, payload, shadow_name)
            if shadow_name is None:
                service.published(thing_name, shadow)
            return shadow

        self._original = original
        setattr(IoTDataPlaneBackend, "update_thing_shadow", update_thing_shadow)  # noqa: B010
        return self

    def published(self, thing: str, shadow: Any) -> None:
        """After an accepted update (moto's FakeShadow): accepted, and the delta."""
        self._publish(_topic(thing, "update", "accepted"), shadow.to_response_dict())
        requested = (shadow.requested_payload or {}).get("state") or {}
        delta = shadow.to_dict(include_delta=True).get("state", {}).get("delta")
        if "desired" in requested and delta:
            self._publish(_topic(thing, "update", "delta"), {
                "state": delta, "version": shadow.version, "timestamp": shadow.timestamp})

    def _publish(self, topic: str, document: dict[str, Any]) -> None:
        self._client.publish(topic, json.dumps(document, separators=(",", ":")), qos=1)
        self.answered += 1

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._work.put((message.topic, bytes(message.payload)))

    def _serve(self) -> None:
        while (item := self._work.get()) is not None:
            topic, payload = item
            try:
                self._answer(topic, payload)
            except Exception:  # one bad request must not stop the service
                log.exception("shadow service: %s failed", topic)

    def _answer(self, topic: str, payload: bytes) -> None:
        thing, op = topic.split("/")[2], topic.split("/")[4]
        # IoT Core echoes a get's clientToken in its answer: devices match answers
        # to their own requests by it (and ignore the rest)
        token = _client_token(payload) if op == "get" else None
        try:
            if op == "get":
                document = json.loads(self.iot_data.get_thing_shadow(
                    thingName=thing)["payload"].read())
                if token is not None:
                    document["clientToken"] = token
                self._publish(_topic(thing, "get", "accepted"), document)
            else:
                self._update(thing, payload)
        except Exception as exc:  # noqa: BLE001 - answered as IoT Core would
            code = _CODES.get(getattr(exc, "response", {}).get("Error", {}).get("Code", ""), 500)
            body: dict[str, Any] = {"code": code, "message": str(exc),
                                    "timestamp": int(time.time())}
            if token is not None:
                body["clientToken"] = token
            self._publish(_topic(thing, op, "rejected"), body)

    def _update(self, thing: str, payload: bytes) -> None:
        """IoT Core keeps a shadow for any thing name; moto only for a thing of
        its registry. A device may report before the stream consumer has
        registered it, so the sandbox registers the bare name first (the
        registry adds its type and group when the device's traffic arrives)."""
        try:
            self.iot_data.update_thing_shadow(thingName=thing, payload=payload)
        except self.iot_data.exceptions.ResourceNotFoundException:
            with contextlib.suppress(self.iot.exceptions.ResourceAlreadyExistsException):
                self.iot.create_thing(thingName=thing)
            self.iot_data.update_thing_shadow(thingName=thing, payload=payload)

    def stop(self) -> None:
        if self._original is not None:
            from moto.iotdata.models import IoTDataPlaneBackend

            setattr(IoTDataPlaneBackend, "update_thing_shadow", self._original)  # noqa: B010
            self._original = None
        self._work.put(None)
        if self._worker.is_alive():
            self._worker.join(timeout=10)
        self._client.disconnect()
        self._client.loop_stop()


def _client_token(payload: bytes) -> str | None:
    try:
        token = json.loads(payload or b"{}").get("clientToken")
    except (ValueError, AttributeError):
        return None
    return token if isinstance(token, str) else None
