"""Shadow and jobs requests that arrive while the database is locked are kept
(unacknowledged, at the front of their queue) and answered when it is back,
instead of being acknowledged and lost (shadow) or refused with InternalError
(jobs, which made devices give their update up); the status says the database
is down meanwhile, as it does for telemetry."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

import core.store.engine
from core.store import Store
from plugins.local.jobs.file_server import FirmwareFileServer
from tests.chaos.rig import sqlite_write_lock
from tests.integration.hub.conftest import wait_until
from tests.integration.jobs.conftest import JobsRig, add_firmware, start_hub

LOCK_S = 3.0


@pytest.fixture
def rig(mosquitto_broker, tmp_path: Path, monkeypatch):
    # a write waits 0.3 s for the lock instead of 10 s: the lock makes writes fail
    monkeypatch.setattr(core.store.engine, "SQLITE_BUSY_TIMEOUT_MS", 300)
    db = tmp_path / "hub.db"
    store = Store.open(f"sqlite:///{db}")
    hub = start_hub(store, mosquitto_broker,
                    file_server=FirmwareFileServer(store.firmware, expiry_s=600))
    rig = JobsRig(mosquitto_broker, store, hub)
    yield rig, db
    rig.close()
    hub.stop()
    store.close()


def _watch_down(hub) -> tuple[list[bool], threading.Event]:
    seen: list[bool] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.05):
            if hub.health.down:
                seen.append(True)

    threading.Thread(target=watch, daemon=True).start()
    return seen, stop


def test_shadow_update_during_a_lock_is_stored_after_it(rig) -> None:
    rig, db = rig
    device = rig.device("thermo-outage-1")
    thing = device.thing
    replies: list[tuple[str, dict]] = []
    device.client.message_callback_add(
        f"$aws/things/{thing}/shadow/update/+",
        lambda _c, _u, m: replies.append((m.topic, json.loads(m.payload))))
    subscribed = threading.Event()
    device.client.on_subscribe = lambda *_: subscribed.set()
    device.client.subscribe(f"$aws/things/{thing}/shadow/update/+", qos=1)
    assert subscribed.wait(10)
    seen_down, stop = _watch_down(rig.hub)
    try:
        with sqlite_write_lock(db):
            device.client.publish(
                f"$aws/things/{thing}/shadow/update",
                json.dumps({"state": {"reported": {"setpoint": 21.5}},
                            "clientToken": "s-1"}), qos=1).wait_for_publish(10)
            wait_until(lambda: seen_down, 20, "the database outage was not noticed")
            time.sleep(LOCK_S)  # the lock is what is being tested: held a while
            assert rig.store.shadows.get(thing) is None
        document = wait_until(lambda: rig.store.shadows.get(thing), 30,
                              "the shadow update made during the lock was lost")
        assert document.reported == {"setpoint": 21.5}
        wait_until(lambda: any(t.endswith("/accepted") for t, _ in replies), 20,
                   "the device got no accepted answer")
        assert not any(t.endswith("/rejected") for t, _ in replies)
        wait_until(lambda: not rig.hub.health.down, 20, "the hub did not recover")
    finally:
        stop.set()


def test_jobs_update_during_a_lock_is_answered_after_it_not_refused(rig) -> None:
    rig, db = rig
    firmware, _ = add_firmware(rig.store)
    device = rig.device("pump-outage-1")
    deployment = rig.deploy(firmware, [device.thing])
    job = deployment.deployment_id
    device.wait_for("notify-next")
    suffix, started = device.request(("start-next",), {"statusDetails": {"step": "dl"}})
    assert suffix == "accepted"
    version = started["execution"]["versionNumber"]
    seen_down, stop = _watch_down(rig.hub)
    try:
        with sqlite_write_lock(db):
            device.publish_raw((job, "update"), json.dumps({
                "status": "IN_PROGRESS", "expectedVersion": version,
                "statusDetails": {"step": "dl", "progress": "50"},
                "clientToken": "u-1"}).encode())
            wait_until(lambda: seen_down, 20, "the database outage was not noticed")
            time.sleep(LOCK_S)
            assert not device.on(job, "update", "rejected"), "refused during the outage"
        suffix, body = device.answer((job, "update"), "u-1")
        assert suffix == "accepted", body
        execution = rig.store.deployments.execution(job, device.thing)
        assert execution.status_details.get("progress") == "50"
    finally:
        stop.set()
