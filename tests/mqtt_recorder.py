"""An independent MQTT observer for tests: records every message it sees and
can publish as the cloud side would (shadow service, command sender)."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

_ids = itertools.count()


@dataclass(frozen=True)
class Seen:
    topic: str
    payload: bytes
    retain: bool
    at: float

    def json(self):
        return json.loads(self.payload)


class Recorder:
    def __init__(self, host: str, port: int, filters: list[str]) -> None:
        self.messages: list[Seen] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"test-recorder-{next(_ids)}-{time.monotonic_ns()}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        self.client.subscribe([(f, 1) for f in filters])
        if not self._subscribed.wait(10):
            raise TimeoutError("recorder could not subscribe")

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append(Seen(message.topic, bytes(message.payload), message.retain,
                                      time.monotonic()))

    def on(self, topic: str) -> list[Seen]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def matching(self, predicate: Callable[[Seen], bool]) -> list[Seen]:
        with self._lock:
            return [m for m in self.messages if predicate(m)]

    def wait_for(self, predicate: Callable[[Seen], bool], timeout: float = 15.0) -> Seen:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.matching(predicate)
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError("expected message did not arrive in time")

    def settle(self, quiet_s: float = 1.0, timeout: float = 30.0) -> None:
        """Waits until nothing new has arrived for ``quiet_s``: on a loaded machine the
        broker can still be delivering what a finished run published."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                last = self.messages[-1].at if self.messages else 0.0
            if time.monotonic() - last >= quiet_s:
                return
            time.sleep(0.05)
        raise AssertionError(f"messages still arriving after {timeout} s")

    def publish(self, topic: str, body: dict | bytes, qos: int = 1) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.client.publish(topic, payload, qos=qos).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
