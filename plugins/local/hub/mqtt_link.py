"""One MQTT connection on paho's own network thread, reconnecting by itself.

Message callbacks arrive on that thread and must return quickly: handlers
only decode and enqueue, the store is written elsewhere, so a slow database
never stalls the socket (which would make the broker drop our messages).
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from core.protocol.limits import MAX_FILTERS_PER_SUBSCRIBE

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]


class MqttLink:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        filters: Sequence[str],
        on_message: MessageHandler,
        on_state: Callable[[str], None] | None = None,
        tls_context: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        if len(filters) > MAX_FILTERS_PER_SUBSCRIBE:
            raise ValueError(f"at most {MAX_FILTERS_PER_SUBSCRIBE} filters per SUBSCRIBE")
        self.host, self.port = host, port
        self.filters = list(filters)
        self._on_message = on_message
        self._on_state = on_state
        self.state = "disconnected"
        self.last_error = ""
        self.connected_event = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=True, protocol=mqtt.MQTTv311)
        # Reconnects back off from 1 s to 30 s; paho adds no jitter, so the
        # first attempt is staggered to keep several consoles from stampeding.
        self.client.reconnect_delay_set(1, 30)
        if tls_context is not None:
            self.client.tls_set_context(tls_context)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_message = self._message
        self.client.max_queued_messages_set(0)

    def start(self) -> None:
        self._set_state("connecting")
        time.sleep(random.uniform(0, 0.05))
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self._set_state("disconnected")

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> Any:
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def wait_connected(self, timeout: float) -> bool:
        return self.connected_event.wait(timeout)

    def _set_state(self, state: str) -> None:
        self.state = state
        if self._on_state is not None:
            self._on_state(state)

    def _connected(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                   properties: Any) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            self._set_state("disconnected")
            return
        client.subscribe([(f, 1) for f in self.filters])
        self.connected_event.set()
        self._set_state("connected")

    def _disconnected(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                      properties: Any) -> None:
        self.connected_event.clear()
        self.last_error = str(reason)
        self._set_state("connecting")  # paho's loop reconnects by itself

    def _message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self._on_message(message.topic, bytes(message.payload))
        except Exception:
            log.exception("handling %s failed", message.topic)
