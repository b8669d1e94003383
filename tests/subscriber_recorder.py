"""Records what :class:`plugins.local.hub.mqtt_subscriber.Subscriber` hands
over, for the tests that run it against real brokers."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from plugins.local.hub.mqtt_subscriber import Message, Subscriber, SubscriberConfig
from tests.integration.hub.conftest import wait_until

TIMEOUT = 20.0


class Recorder:
    """The callbacks, recorded in the order they came."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.events: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def kwargs(self) -> dict[str, Any]:
        return {"on_messages": self.on_messages,
                "on_connected": lambda g: self.note("connected", g),
                "on_subscribed": lambda refused: self.note("subscribed", refused),
                "on_lost": lambda reason: self.note("lost", reason),
                "on_refused": lambda reason: self.note("refused", reason),
                "on_failed": lambda reason: self.note("failed", reason)}

    def on_messages(self, messages: list[Message]) -> None:
        with self.lock:
            self.messages.extend(messages)

    def note(self, kind: str, value: Any) -> None:
        with self.lock:
            self.events.append((kind, value))

    def seen(self, kind: str) -> list[Any]:
        with self.lock:
            return [v for k, v in self.events if k == kind]

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [m[1] for m in self.messages]


def subscriber(host: str, port: int, recorder: Recorder, **config: Any) -> Subscriber:
    config.setdefault("client_id", f"rx-test-{os.getpid()}-{time.monotonic_ns()}")
    config.setdefault("filters", ["dt/+/+/telemetry"])
    client = Subscriber(SubscriberConfig(host=host, port=port, **config), **recorder.kwargs())
    client.start()
    wait_until(lambda: recorder.seen("subscribed"),
               message="the subscription")
    return client


