"""One MQTT connection on paho's own network thread, reconnecting by itself.

Message callbacks arrive on that thread and must return quickly: handlers
only decode and enqueue, the store is written elsewhere, so a slow database
never stalls the socket (which would make the broker drop our messages).

The hub's link is a persistent session (MQTT 5 session expiry, or
``clean_session=False`` on 3.1.1) with a stable client id and manual QoS 1
acknowledgements: a message is acknowledged once it is in the store, so a hub
killed with a backlog gets every unacknowledged message again from the broker.
A Receive Maximum (MQTT 5) can be announced, but the hub bounds its memory by
itself: mosquitto 2.0.11 delivers QoS 1 out of order once a small one is hit.
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
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core.protocol.limits import MAX_FILTERS_PER_SUBSCRIBE
from plugins.local.hub.mqtt_wire import MQTT_V5, MQTT_V311

log = logging.getLogger(__name__)

MessageHandler = Callable[..., None]
# (connection generation, packet id): a packet id means something only on the
# connection it arrived on; after a reconnect the broker sends the message again.
AckToken = tuple[int, int]


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
        clean_session: bool = True,
        protocol: int = MQTT_V311,
        session_expiry_s: int = 0,
        manual_ack: bool = False,
        receive_maximum: int | None = None,
        will: tuple[str, bytes] | None = None,
        unsubscribe: Sequence[str] = (),
    ) -> None:
        """``manual_ack``: ``on_message`` gets a third argument, an :data:`AckToken`
        for QoS 1 messages (None for QoS 0), to hand to :meth:`ack` once the message
        is safe; ``receive_maximum`` (MQTT 5) caps how many the broker sends ahead.
        ``will``: (topic, payload) the broker publishes, retained at QoS 1, when
        this connection dies without a DISCONNECT (the hub's "offline").
        ``unsubscribe``: filters a persistent session may still hold from an
        earlier run (the hub's telemetry, now received elsewhere), dropped at
        every connect so the broker stops sending them here."""
        if protocol not in (MQTT_V311, MQTT_V5):
            raise ValueError(f"protocol must be {MQTT_V311} (3.1.1) or {MQTT_V5}, not {protocol}")
        if len(filters) > MAX_FILTERS_PER_SUBSCRIBE:
            raise ValueError(f"at most {MAX_FILTERS_PER_SUBSCRIBE} filters per SUBSCRIBE")
        self.host, self.port = host, port
        self.filters = list(filters)
        self.unsubscribe = [f for f in unsubscribe if f not in self.filters]
        self._on_message = on_message
        self._on_state = on_state
        self._state_watchers: list[Callable[[str], None]] = []
        self.state = "disconnected"
        self.last_error = ""
        self.connected_event = threading.Event()
        # Set when the broker has acknowledged the SUBSCRIBE of every filter on the
        # current connection: before that, what is published to them is not ours.
        self.subscribed_event = threading.Event()
        self._subscribe_mid: int | None = None
        self.client_id = client_id
        self.clean_session = clean_session
        self.protocol = protocol
        self.manual_ack = manual_ack
        self.generation = 0
        self._connect_properties: Properties | None = None
        if protocol == MQTT_V5:
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                      protocol=mqtt.MQTTv5, manual_ack=manual_ack)
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0 if clean_session else max(0, int(session_expiry_s))
            if receive_maximum:
                props.ReceiveMaximum = max(1, min(int(receive_maximum), 65535))
            self._connect_properties = props
        else:
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                      clean_session=clean_session, protocol=mqtt.MQTTv311,
                                      manual_ack=manual_ack)
        # Reconnects back off from 1 s to 30 s; paho adds no jitter, so the
        # first attempt is staggered to keep several consoles from stampeding.
        self.client.reconnect_delay_set(1, 30)
        if tls_context is not None:
            self.client.tls_set_context(tls_context)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._connected
        self.client.on_subscribe = self._subscribed
        self._login = f"user {username}" if username else "a client without user name"
        self.client.on_disconnect = self._disconnected
        self.client.on_message = self._message
        self.client.max_queued_messages_set(0)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)

    def start(self) -> None:
        self._set_state("connecting")
        time.sleep(random.uniform(0, 0.05))
        if self.protocol == MQTT_V5:
            self.client.connect_async(self.host, self.port, keepalive=30,
                                      clean_start=self.clean_session,
                                      properties=self._connect_properties)
        else:
            self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self._set_state("disconnected")

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> Any:
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def ack(self, tokens: Sequence[AckToken]) -> int:
        """Acknowledge QoS 1 messages now safe in the store; tokens from an earlier
        connection are skipped (the broker sends those again). Returns how many
        acknowledgements went out."""
        sent = 0
        generation = self.generation
        for token_generation, mid in tokens:
            if token_generation == generation:
                self.client.ack(mid, 1)
                sent += 1
        return sent

    def wait_connected(self, timeout: float) -> bool:
        return self.connected_event.wait(timeout)

    def wait_subscribed(self, timeout: float) -> bool:
        """Connected and every filter acknowledged (SUBACK) by the broker: what
        is published to the filters from now on reaches this client."""
        return self.subscribed_event.wait(timeout)

    def watch_state(self, callback: Callable[[str], None]) -> None:
        """Also tell ``callback`` every state change (on paho's thread): how a
        console's status bar follows its own link to the broker."""
        self._state_watchers.append(callback)

    def _set_state(self, state: str) -> None:
        self.state = state
        if self._on_state is not None:
            self._on_state(state)
        for watcher in list(self._state_watchers):
            try:
                watcher(state)
            except Exception:
                log.exception("a watcher of %s's connection state failed", self.client_id)

    def _connected(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                   properties: Any) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            # paho retries with backoff (at most every 30 s), so this stays readable.
            log.warning("%s: the broker at %s:%d refused the login of %s: %s", self.client_id,
                        self.host, self.port, self._login, reason)
            self._set_state("disconnected")
            return
        self.generation += 1
        self.subscribed_event.clear()
        if self.unsubscribe and not self.clean_session:
            client.unsubscribe(self.unsubscribe)
        if self.filters:
            # SUBACK is handled on this same network thread, after this returns
            _, self._subscribe_mid = client.subscribe([(f, 1) for f in self.filters])
        else:
            self.subscribed_event.set()
        self.connected_event.set()
        self._set_state("connected")

    def _subscribed(self, client: mqtt.Client, userdata: Any, mid: Any, reasons: Any,
                    properties: Any) -> None:
        """A filter the broker's ACL refuses would otherwise just stay silent."""
        for topic, reason in zip(self.filters, reasons, strict=False):
            if getattr(reason, "is_failure", False):
                self.last_error = f"broker refused the subscription to {topic}: {reason}"
                log.warning("%s: the broker refused %s the subscription to %s: %s",
                            self.client_id, self._login, topic, reason)
        if mid == self._subscribe_mid:
            self.subscribed_event.set()

    def _disconnected(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                      properties: Any) -> None:
        was_connected = self.connected_event.is_set()
        self.connected_event.clear()
        self.subscribed_event.clear()
        # After a refused CONNECT paho reports an "Unspecified error" disconnect;
        # the refusal (wrong password, unknown user) is the message worth keeping.
        if was_connected or not self.last_error.startswith("broker refused the connection"):
            self.last_error = str(reason)
        self._set_state("connecting")  # paho's loop reconnects by itself

    def _message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            if self.manual_ack:
                token = (self.generation, message.mid) if message.qos == 1 else None
                self._on_message(message.topic, bytes(message.payload), token)
            else:
                self._on_message(message.topic, bytes(message.payload))
        except Exception:
            log.exception("handling %s failed", message.topic)
