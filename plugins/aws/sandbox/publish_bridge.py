"""IoT Data's Publish, delivered: what the backend publishes through the AWS
API (commands to a device, the alert feed for consoles) reaches the MQTT
clients of the sandbox's broker, as IoT Core delivers it to its subscribers.

moto's server takes a Publish and keeps it in memory, delivering it to no
one. The sandbox runs moto in its own process, so it wraps moto's publish to
hand each message on to the broker as well (QoS 1). This is the sandbox
standing in for IoT Core's message broker, not a test double: the HTTP
request, its signing and moto's answer are unchanged."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)


class PublishBridge:
    def __init__(self, broker: tuple[str, int]) -> None:
        self.broker = broker
        self.delivered = 0
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                   client_id=f"sandbox-iot-data-{uuid.uuid4().hex[:8]}")
        self._connected = threading.Event()
        self._client.on_connect = lambda *a: self._connected.set()
        self._original: Callable[..., None] | None = None

    def start(self, timeout_s: float = 10.0) -> PublishBridge:
        from moto.iotdata.models import IoTDataPlaneBackend

        self._client.connect(*self.broker, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(timeout_s):
            self._client.loop_stop()
            raise RuntimeError(f"the IoT Data bridge could not connect to the broker at "
                               f"{self.broker[0]}:{self.broker[1]}")
        original = IoTDataPlaneBackend.publish
        bridge = self

        def publish(backend: Any, topic: str, payload: bytes | str) -> None:
            original(backend, topic, payload)  # type: ignore[arg-type]
            bridge.forward(topic, payload)

        self._original = original
        IoTDataPlaneBackend.publish = publish  # type: ignore[method-assign,assignment]
        return self

    def forward(self, topic: str, payload: bytes | str) -> None:
        data = payload.encode() if isinstance(payload, str) else bytes(payload or b"")
        info = self._client.publish(topic, data, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.warning("IoT Data bridge: could not deliver a message on %s (%s)", topic,
                        mqtt.error_string(info.rc))
            return
        self.delivered += 1

    def stop(self) -> None:
        if self._original is not None:
            from moto.iotdata.models import IoTDataPlaneBackend

            IoTDataPlaneBackend.publish = self._original  # type: ignore[method-assign]
            self._original = None
        self._client.disconnect()
        self._client.loop_stop()
