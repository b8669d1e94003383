"""A real hub (Jobs service, file server, rollout engine) on a private mosquitto
with a real SQLite store, and a raw-MQTT device that speaks the Jobs topics."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core.model import Deployment, Firmware, SemVer
from core.model.rollout import JobConfig
from core.protocol.ota import OtaJobDocument, presigned_placeholder
from core.protocol.topics import jobs_topic
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.hub import Hub
from plugins.local.jobs.file_server import FirmwareFileServer
from tests.integration.hub.conftest import wait_until

TIMEOUT = 20.0


class JobsDevice:
    """A device on plain paho: subscribes to its jobs topics and records everything."""

    def __init__(self, host: str, port: int, thing: str) -> None:
        self.thing = thing
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=thing,
                                  clean_session=True, protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(
            f"$aws/things/{thing}/jobs/#", qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        assert self._subscribed.wait(TIMEOUT), "device could not subscribe"

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            body = json.loads(message.payload)
        except ValueError:
            body = {"_raw": bytes(message.payload)}
        with self._lock:
            self.messages.append((message.topic, body))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def on(self, *tail: str) -> list[dict[str, Any]]:
        topic = jobs_topic(self.thing, *tail)
        with self._lock:
            return [body for t, body in self.messages if t == topic]

    def publish_raw(self, tail: tuple[str, ...], payload: bytes) -> None:
        self.client.publish("/".join((f"$aws/things/{self.thing}/jobs", *tail)), payload,
                            qos=1).wait_for_publish(TIMEOUT)

    def request(self, tail: tuple[str, ...], body: dict[str, Any] | None = None, *,
                token: str | None = None) -> tuple[str, dict[str, Any]]:
        """Publish a request with a fresh clientToken; return ("accepted"|"rejected", body)."""
        token = token or uuid.uuid4().hex[:16]
        payload = {**(body or {}), "clientToken": token}
        self.publish_raw(tail, json.dumps(payload).encode())
        return self.answer(tail, token)

    def answer(self, tail: tuple[str, ...], token: str) -> tuple[str, dict[str, Any]]:
        def found() -> tuple[str, dict[str, Any]] | None:
            for suffix in ("accepted", "rejected"):
                for reply in self.on(*tail, suffix):
                    if reply.get("clientToken") == token:
                        return suffix, reply
            return None

        return wait_until(found, TIMEOUT, f"no answer to jobs/{'/'.join(tail)} ({token})")

    def wait_for(self, *tail: str, count: int = 1) -> list[dict[str, Any]]:
        return wait_until(lambda: len(self.on(*tail)) >= count and self.on(*tail), TIMEOUT,
                          f"fewer than {count} messages on jobs/{'/'.join(tail)}")


def add_firmware(store: Store, device_type: str = "pump", version: str = "2.0.0",
                 size: int = 300_000) -> tuple[Firmware, bytes]:
    image = bytes((i * 7 + 3) % 256 for i in range(size))
    firmware = Firmware(SemVer.parse(version), device_type, size,
                        hashlib.sha256(image).hexdigest(), signature=b"\x01" * 64)
    store.firmware.add(firmware, image)
    return firmware, image


def make_deployment(firmware: Firmware, targets: list[str], *,
                    config: JobConfig | None = None) -> Deployment:
    document = OtaJobDocument.for_firmware(
        firmware, key_id="test-key",
        url=presigned_placeholder(f"firmware/{firmware.firmware_id}")).to_json()
    return Deployment(firmware_id=firmware.firmware_id, targets=tuple(targets),
                      config=config or JobConfig(), document=document)


class JobsRig:
    def __init__(self, broker: Any, store: Store, hub: Hub) -> None:
        self.broker, self.store, self.hub = broker, store, hub
        self.devices: list[JobsDevice] = []

    def device(self, thing: str) -> JobsDevice:
        device = JobsDevice(self.broker.host, self.broker.port, thing)
        self.devices.append(device)
        return device

    def deploy(self, firmware: Firmware, targets: list[str], **kw: Any) -> Deployment:
        return self.store.deployments.create(make_deployment(firmware, targets, **kw))

    def close(self) -> None:
        for device in self.devices:
            device.close()


def start_hub(store: Store, broker: Any, **kw: Any) -> Hub:
    hub = Hub(store, EventBus(), broker.host, broker.port, **kw)
    hub.start()
    assert hub.wait_subscribed(TIMEOUT)
    return hub


@pytest.fixture
def jobs_rig(mosquitto_broker, tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    hub = start_hub(store, mosquitto_broker,
                    file_server=FirmwareFileServer(store.firmware, expiry_s=600))
    rig = JobsRig(mosquitto_broker, store, hub)
    yield rig
    rig.close()
    hub.stop()
    store.close()
