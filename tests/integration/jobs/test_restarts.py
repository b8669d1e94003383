"""Reliability: a hub restarted mid-rollout resumes it from the store, and a
broker restarted mid-rollout loses no execution update a device was told was
accepted."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

import pytest

from core.model import ExecutionStatus
from core.model.rollout import JobConfig, RolloutConfig
from core.store import Store
from plugins.local.jobs.file_server import FirmwareFileServer
from simulator.broker import EmbeddedBroker
from tests.integration.hub.conftest import wait_until
from tests.integration.jobs.conftest import (
    TIMEOUT,
    JobsDevice,
    add_firmware,
    make_deployment,
    start_hub,
)


def _released(store, job_id):
    return {e.device_id for e in store.deployments.executions(job_id)}


def test_hub_restart_mid_rollout_resumes_from_the_store(mosquitto_broker, tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    firmware, _ = add_firmware(store, size=5000)
    things = [f"pump-rs-{i}" for i in range(6)]
    devices = [JobsDevice(mosquitto_broker.host, mosquitto_broker.port, t) for t in things]
    # one device a minute, at 60x rollout speed: one a second
    config = JobConfig(RolloutConfig(maximum_per_minute=1))
    hub = start_hub(store, mosquitto_broker, rollout_speed=60.0)
    try:
        job = store.deployments.create(make_deployment(firmware, things, config=config))
        job_id = job.deployment_id
        wait_until(lambda: len(_released(store, job_id)) >= 2, TIMEOUT, "rollout did not start")
        first = devices[0]
        first.wait_for("notify-next")
        suffix, started = first.request(("start-next",), {"statusDetails": {"step": "a"}})
        assert suffix == "accepted"
        old_url = started["execution"]["jobDocument"]["url"]
    finally:
        hub.stop()
    before = _released(store, job_id)
    assert 2 <= len(before) < len(things), before
    state = store.deployments.get(job_id).rollout_state
    assert state.get("steps", 0) >= 2  # the engine's bookkeeping is in the store

    time.sleep(1.5)  # the hub is down for a while; nothing moves
    assert _released(store, job_id) == before

    hub = start_hub(store, mosquitto_broker, rollout_speed=60.0)
    try:
        wait_until(lambda: _released(store, job_id) == set(things), TIMEOUT * 2,
                   "the restarted hub did not finish the rollout")
        for device in devices:
            if device.thing not in before:
                nxt = device.wait_for("notify-next")[0]  # told by the second hub
                assert nxt["execution"]["jobId"] == job_id
        # each device was released exactly once
        assert sorted(e.device_id for e in store.deployments.executions(job_id)) == \
            sorted(things)
        assert all(e.execution_number == 1 for e in store.deployments.executions(job_id))

        # the device that was mid-update continues with the new hub, versions intact
        suffix, body = first.request((job_id, "update"), {
            "status": "IN_PROGRESS", "expectedVersion": 2, "includeJobExecutionState": True})
        assert suffix == "accepted" and body["executionState"]["versionNumber"] == 3
        # its old URL died with the old hub; describing the job gives a fresh one
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(old_url, timeout=5).read()
        suffix, described = first.request((job_id, "get"))
        with urllib.request.urlopen(described["execution"]["jobDocument"]["url"],
                                    timeout=TIMEOUT) as response:
            assert len(response.read()) == 5000
    finally:
        hub.stop()
        for device in devices:
            device.close()
        store.close()


def test_broker_restart_loses_no_accepted_execution_update(tmp_path):
    broker = EmbeddedBroker(prefer="mosquitto", anonymous=True).start()
    port = broker.port
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    firmware, _ = add_firmware(store, size=5000)
    things = [f"pump-br-{i}" for i in range(4)]
    hub = start_hub(store, broker, file_server=FirmwareFileServer(store.firmware))
    devices = [JobsDevice(broker.host, port, t) for t in things]
    job_id = store.deployments.create(make_deployment(firmware, things)).deployment_id
    try:
        for device in devices:
            device.wait_for("notify-next")
            assert device.request(("start-next",))[0] == "accepted"

        # every device streams progress updates while the broker goes down and up
        stop = threading.Event()
        sent: dict[str, int] = {t: 0 for t in things}

        def stream(device: JobsDevice) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                payload = (f'{{"status":"IN_PROGRESS","statusDetails":{{"progress":"{n}"}},'
                           f'"includeJobExecutionState":true,"clientToken":"p{n}"}}')
                device.client.publish(f"$aws/things/{device.thing}/jobs/{job_id}/update",
                                      payload.encode(), qos=1)
                sent[device.thing] = n
                time.sleep(0.02)

        threads = [threading.Thread(target=stream, args=(d,)) for d in devices]
        for thread in threads:
            thread.start()
        wait_until(lambda: all(len(d.on(job_id, "update", "accepted")) >= 20 for d in devices),
                   TIMEOUT, "updates were not accepted before the restart")
        broker.stop()  # mid-stream: some updates are in flight, some never leave
        time.sleep(1.0)
        broker = EmbeddedBroker(prefer="mosquitto", port=port, anonymous=True).start()
        wait_until(lambda: hub.link.state == "connected", TIMEOUT * 2,
                   "the hub did not reconnect")
        time.sleep(2.0)  # the devices reconnect and stream on
        stop.set()
        for thread in threads:
            thread.join(TIMEOUT)
        time.sleep(1.0)  # the last answers arrive

        # updates queued by the devices' clients during the outage may still arrive:
        # wait until the store stops moving
        def versions_now():
            return [store.deployments.execution(job_id, t).version_number for t in things]

        previous = None
        for _ in range(int(TIMEOUT * 2)):
            current = versions_now()
            if current == previous:
                break
            previous = current
            time.sleep(1.0)

        duplicates = acknowledged = reapplied = 0
        for device in devices:
            accepted = device.on(job_id, "update", "accepted")
            assert accepted, device.thing
            stored = store.deployments.execution(job_id, device.thing)
            # Everything acknowledged is in the store: no two acknowledged updates
            # share a version (none overwrote another), and none is above the
            # stored one. QoS 1 may deliver an answer twice (same token, same
            # version) and may deliver a request twice, which without
            # expectedVersion is applied twice (same token, two versions).
            pairs = {(a["clientToken"], a["executionState"]["versionNumber"])
                     for a in accepted}
            versions = [version for _, version in pairs]
            assert len(set(versions)) == len(versions)
            assert max(versions) <= stored.version_number
            assert len(versions) <= stored.version_number - 2  # 1 queued, 2 started
            duplicates += len(accepted) - len(pairs)
            reapplied += len(pairs) - len({token for token, _ in pairs})
            acknowledged += len(pairs)
            last = max(accepted, key=lambda a: a["executionState"]["versionNumber"])
            if last["executionState"]["versionNumber"] == stored.version_number:
                assert stored.status_details == last["executionState"]["statusDetails"]
            # and the device carries on against the restarted broker
            suffix, done = device.request((job_id, "update"), {
                "status": "SUCCEEDED", "expectedVersion": stored.version_number})
            assert suffix == "accepted", done
            assert store.deployments.execution(job_id, device.thing).status is \
                ExecutionStatus.SUCCEEDED
        print(f"\nbroker restart: {sum(sent.values())} updates sent, {acknowledged} "
              f"acknowledged ({duplicates} answers delivered twice, {reapplied} requests "
              "delivered twice and applied twice); the rest were lost in flight and never "
              "acknowledged")
    finally:
        for device in devices:
            device.close()
        hub.stop()
        broker.stop()
        store.close()
