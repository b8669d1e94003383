"""The forged OTA job (issue finding 1, critical): a client that can publish on a
device's jobs topics tells it to install an old image as version 9.9.9.

The broker's ACLs keep other clients off those topics; these tests take that
layer away (an anonymous broker, the hub gone, the attacker answering the
device's own Jobs requests with the right clientToken) to show that the device
itself refuses: it acts only on a manifest signed by a key it trusts, that
vouches for exactly the document's type, version, size, SHA-256 and downgrade
rule, and has not expired. Before the fix the device installed the old image
from the attacker's URL and reported 9.9.9.
"""

from __future__ import annotations

import base64
import http.server
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core.crypto.keystore import CodeSigningKeys
from core.model import ExecutionStatus, Firmware
from core.model.roles import Actor, Role
from core.model.rollout import JobConfig, RolloutConfig
from core.services.event_bus import EventBus
from core.services.ota import OtaService, TargetSpec
from core.store import Store
from plugins.local.hub.hub import Hub
from simulator.api import RunningFleet
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.integration.firmware.sessions import fleet_api
from tests.security.conftest import wait_until

TIMEOUT = 120.0
OLD_IMAGE = bytes((i * 17 + 5) % 253 for i in range(20_000))
NEW_IMAGE = bytes((i * 29 + 1) % 241 for i in range(24_000))


class _ImageServer(http.server.ThreadingHTTPServer):
    """The attacker's own download URL, serving the genuine old image."""

    def __init__(self) -> None:
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(OLD_IMAGE)))
                self.end_headers()
                self.wfile.write(OLD_IMAGE)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/fw.bin"


@dataclass
class Attacker:
    """An anonymous client playing the Jobs service for one device: it answers the
    device's start-next with the next forged execution and accepts its updates."""

    thing: str
    host: str
    port: int
    queue: list[dict[str, Any]] = field(default_factory=list)
    reports: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"attacker-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        self.client.connect(self.host, self.port)
        self.client.loop_start()
        base = f"$aws/things/{self.thing}/jobs"
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe([(f"{base}/start-next", 1), (f"{base}/+/update", 1)])
        assert done.wait(10)

    def topic(self, *tail: str) -> str:
        return "/".join((f"$aws/things/{self.thing}/jobs", *tail))

    def send(self, topic: str, body: dict[str, Any], *, wait: bool = True) -> None:
        info = self.client.publish(topic, json.dumps(body).encode(), qos=1)
        if wait:  # never from a callback: the network loop it would wait for is ours
            info.wait_for_publish(10)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        body = json.loads(message.payload)
        token = body.get("clientToken")
        now = int(time.time())
        if message.topic.endswith("/start-next"):
            with self.lock:
                forged = self.queue.pop(0) if self.queue else None
            answer: dict[str, Any] = {"clientToken": token, "timestamp": now}
            if forged is not None:
                answer["execution"] = forged
            self.send(self.topic("start-next", "accepted"), answer, wait=False)
            return
        job_id = message.topic.split("/")[-2]
        with self.lock:
            self.reports.setdefault(job_id, []).append(body)
        self.send(self.topic(job_id, "update", "accepted"),
                  {"clientToken": token, "timestamp": now,
                   "executionState": {"status": body.get("status"), "versionNumber": 99}},
                  wait=False)

    def final(self, job_id: str) -> dict[str, Any] | None:
        with self.lock:
            for body in self.reports.get(job_id, []):
                if body.get("status") in ("REJECTED", "FAILED", "SUCCEEDED"):
                    return body
        return None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def execution(job_id: str, document: dict[str, Any]) -> dict[str, Any]:
    now = int(time.time())
    return {"jobId": job_id, "thingName": "", "status": "IN_PROGRESS", "queuedAt": now,
            "startedAt": now, "lastUpdatedAt": now, "versionNumber": 1,
            "executionNumber": 1, "jobDocument": document}


def edit_payload(document: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Change the signed manifest's bytes (and the document to match), keeping
    the signature: only the signature check can catch this."""
    manifest = dict(document["manifest"])
    payload = json.loads(base64.b64decode(manifest["payload"]))
    payload.update(fields)
    manifest["payload"] = base64.b64encode(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).decode()
    return {**document, "manifest": manifest,
            "firmware": {**document["firmware"], **fields}}


@dataclass
class Site:
    store: Store
    hub: Hub
    fleet: RunningFleet
    ota: OtaService
    keys: CodeSigningKeys
    old: Firmware
    new: Firmware
    victim: str
    actor: Actor


@pytest.fixture
def site(mosquitto_broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("SMARTIOT_DATA_DIR", str(tmp_path / "data"))
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    hub = Hub(store, EventBus(), mosquitto_broker.host, mosquitto_broker.port,
              rollout_speed=10.0)
    hub.start()
    keys = CodeSigningKeys(tmp_path / "codesign")
    engineer = Actor("erin", Role.ENGINEER)
    library = fleet_api(store, keys, engineer).firmware
    old = library.import_bytes(OLD_IMAGE, version="1.0.1", device_type="pump")
    new = library.import_bytes(NEW_IMAGE, version="1.1.0", device_type="pump")
    prefix = f"forge{uuid.uuid4().hex[:6]}"
    group = DeviceGroup(prefix, "pump", 1, firmware="1.0.0", interval_s=2.0, id_prefix=prefix)
    fleet = RunningFleet(Scenario(name="forged job", groups=(group,), source="test"),
                         broker_url=mosquitto_broker.url, seed=5, client_id_prefix=f"{prefix}-",
                         trusted_keys=[keys.public_pem()]).start()
    ota = OtaService(store.deployments, store.firmware, store.registry, audit=store.audit,
                     signer=keys)
    try:
        assert hub.wait_connected(30)
        victim = fleet.fleet.device_ids[0]
        wait_until(lambda: store.registry.find(victim), TIMEOUT, "the victim registered")
        yield Site(store, hub, fleet, ota, keys, old, new, victim, engineer)
    finally:
        fleet.stop()
        hub.stop()
        store.close()


def running_version(site: Site) -> str:
    return site.fleet.fleet.device_info(0)[3]


def test_forged_executions_are_refused_and_the_device_keeps_its_version(
        site: Site, mosquitto_broker, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="simulator.ota")
    # A real update first: the path works and the device runs 1.1.0.
    d = site.ota.create(site.actor, site.new.firmware_id,
                        TargetSpec("list", device_ids=(site.victim,)),
                        JobConfig(RolloutConfig(maximum_per_minute=100)))
    wait_until(lambda: [e.status for e in site.store.deployments.executions(d.deployment_id)]
               == [ExecutionStatus.SUCCEEDED], TIMEOUT, "the genuine update")
    wait_until(lambda: site.store.registry.find(site.victim).firmware_version == "1.1.0",
               TIMEOUT, "the device reporting 1.1.0")
    assert running_version(site) == "1.1.0"

    # What the attacker has: the old image and documents (with real signed manifests)
    # of past deployments of it, one of which allowed a downgrade and has expired.
    old_document = site.ota.document_for(site.actor, site.old)
    past = OtaService(site.store.deployments, site.store.firmware, site.store.registry,
                      signer=site.keys, clock=lambda: time.time() - 7200)
    expired_downgrade = past.document_for(site.actor, site.old, allow_downgrade=True,
                                          manifest_validity_s=3600)
    site.hub.stop()  # nobody else answers the device now
    server = _ImageServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    attacker = Attacker(site.victim, mosquitto_broker.host, mosquitto_broker.port)
    try:
        own_url = {"url": server.url}
        as_999 = {**old_document, **own_url, "allowDowngrade": True,
                  "firmware": {**old_document["firmware"], "version": "9.9.9"}}
        unsigned = {k: v for k, v in as_999.items() if k != "manifest"}
        # 1. Answers the device never asked for: ignored outright.
        for token in (None, "attacker-token"):
            body = {"timestamp": int(time.time()), "execution": execution("unasked", unsigned)}
            if token:
                body["clientToken"] = token
            attacker.send(attacker.topic("start-next", "accepted"), body)
        # 2. Executions handed over as answers to the device's own requests.
        cases = [
            ("no-manifest", unsigned, "bad-document"),
            ("version-edited", as_999, "bad-document"),
            ("manifest-edited", edit_payload({**old_document, **own_url}, version="9.9.9"),
             "bad-signature"),
            ("expired-replay", {**expired_downgrade, **own_url}, "expired-manifest"),
            ("old-manifest", {**old_document, **own_url}, "downgrade"),
        ]
        for job_id, document, reason in cases:
            attacker.queue.append(execution(job_id, document))
            attacker.send(attacker.topic("notify-next"),
                          {"timestamp": int(time.time()),
                           "execution": {"jobId": job_id, "queuedAt": int(time.time()),
                                         "versionNumber": 1, "executionNumber": 1}})
            final = wait_until(lambda job=job_id: attacker.final(job), TIMEOUT,
                               f"the device's verdict on {job_id}")
            assert final["status"] == "REJECTED", (job_id, final)
            assert final["statusDetails"]["reason"] == reason, (job_id, final)
            assert running_version(site) == "1.1.0"
        assert "unasked" not in attacker.reports
        assert server.requests == 0, "the device downloaded from the attacker's URL"
        assert running_version(site) == "1.1.0"
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "not a request this device is waiting for" in logged
        for job_id, _doc, reason in cases:
            assert f"refuses job {job_id}: {reason}" in logged
    finally:
        attacker.close()
        server.shutdown()
