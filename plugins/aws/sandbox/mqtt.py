"""The sandbox's stand-in for IoT Core's message broker: one amqtt broker
with a TCP listener for devices and a WebSocket listener for consoles.

Why amqtt for both, rather than mosquitto for devices plus amqtt for
WebSocket: IoT Core is one topic space reached over MQTT (devices) and
MQTT-over-WebSocket (consoles). Debian 12's mosquitto 2.0.11 is built without
websocket support, and two brokers would need a two-way bridge so that a
console's command reaches a device and telemetry reaches the console. One
amqtt broker serves both listeners from the same sessions and retained
messages; the sandbox's fleet is small, well inside what amqtt carries.

The broker is simulator.broker's amqtt subclass that delivers ``$aws/things/``
topics (shadows, jobs) as IoT Core does. Both listeners bind loopback only and
accept any client: the sandbox checks neither device certificates nor the
console's SigV4 signature (docs/aws.md, Gaps)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from simulator.broker import BrokerError, _aws_topic_broker_class, find_free_port


class IotCoreStandIn:
    def __init__(self, *, mqtt_port: int = 0, ws_port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self._wanted = (mqtt_port, ws_port)  # 0: any free port, chosen at start
        self.mqtt_port = mqtt_port
        self.ws_port = ws_port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._thread: threading.Thread | None = None

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{self.host}:{self.mqtt_port}"

    @property
    def ws_url(self) -> str:
        # IoT Core's path; amqtt accepts any path, so a SigV4-presigned
        # ``/mqtt?X-Amz-...`` URL connects the same way.
        return f"ws://{self.host}:{self.ws_port}/mqtt"

    def start(self, timeout_s: float = 10.0) -> IotCoreStandIn:
        """Free ports are chosen here, just before binding, and chosen again
        if one was taken meanwhile (another process's outgoing connection can
        take any ephemeral port); a port asked for by number is tried once."""
        attempts = 5 if 0 in self._wanted else 1
        for attempt in range(1, attempts + 1):
            self.mqtt_port = self._wanted[0] or find_free_port(self.host)
            self.ws_port = self._wanted[1] or find_free_port(self.host)
            try:
                return self._start(timeout_s)
            except BrokerError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _start(self, timeout_s: float) -> IotCoreStandIn:
        config = {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{self.host}:{self.mqtt_port}",
                            "max_connections": 0},
                "ws": {"type": "ws", "bind": f"{self.host}:{self.ws_port}",
                       "max_connections": 0},
            },
            # every client in (the sandbox checks no certificate), sessions kept
            "plugins": {"simulator.broker_amqtt.AcceptEveryClient": {}},
            # kept sessions whose clients never come back expire (IoT Core's default)
            "session_expiry_interval": 3600,
        }
        broker_class = _aws_topic_broker_class()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._broker = broker_class(config, loop=loop)
                loop.run_until_complete(self._broker.start())
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="sandbox-mqtt", daemon=True)
        self._thread.start()
        if not ready.wait(timeout_s) or failure:
            self.stop()
            reason = f"{type(failure[0]).__name__}: {failure[0]}" if failure else "timed out"
            raise BrokerError(f"the sandbox's MQTT broker did not start on ports "
                              f"{self.mqtt_port} (MQTT) and {self.ws_port} (WebSocket): {reason}")
        return self

    def stop(self) -> None:
        loop, broker, thread = self._loop, self._broker, self._thread
        self._loop = self._broker = self._thread = None
        if loop is not None and broker is not None and loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(timeout=5)
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=5)
