"""Simulated devices update through the real local hub on a real mosquitto: the
Jobs service, the rollout engine and the firmware file server are the product's
own. A full update, a bad-signature image and a downgrade every device refuses
with the reason, and power lost at some step of every device's update."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import Any

import pytest

from core.crypto import codesign
from core.model import Deployment, ExecutionStatus, Firmware, SemVer
from core.protocol.ota import OtaJobDocument, presigned_placeholder, sign_manifest
from core.store import Store
from plugins.local.jobs.file_server import FirmwareFileServer
from simulator.api import RunningFleet
from simulator.fleet import DeviceGroup
from simulator.ota.faults import OtaFaults
from simulator.ota.slots import bootable_after_power_loss
from simulator.scenario import Scenario
from tests.integration.hub.conftest import wait_until
from tests.integration.jobs.conftest import start_hub
from tests.mqtt_recorder import Recorder

KEY = codesign.generate_key()
TIMEOUT = 180.0  # generous: CI machines are loaded
TERMINAL = {ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.REJECTED}


def firmware_image(version: str, size: int = 60_000, *, signature: bytes | None = None,
                   device_type: str = "pump") -> tuple[Firmware, bytes]:
    data = hashlib.sha256(version.encode()).digest() * (size // 32)
    return Firmware(SemVer.parse(version), device_type, len(data),
                    hashlib.sha256(data).hexdigest(),
                    signature=signature or codesign.sign(KEY, data)), data


class Rig:
    def __init__(self, broker: Any, store: Store, prefix: str) -> None:
        self.broker, self.store, self.prefix = broker, store, prefix
        self.fleet: RunningFleet | None = None
        self.recorder = Recorder(broker.host, broker.port, [f"dt/{prefix}/+/telemetry"])

    def start_fleet(self, count: int, faults: OtaFaults | None = None) -> list[str]:
        group = DeviceGroup("pumps", "pump", count, org=self.prefix, firmware="1.0.0",
                            interval_s=2.0, id_prefix=f"{self.prefix}-pump")
        self.fleet = RunningFleet(Scenario(name="ota", groups=(group,)),
                                  broker_url=self.broker.url, seed=11, speed=2.0,
                                  trusted_keys=[codesign.public_pem(KEY)], ota_faults=faults)
        self.fleet.start()
        ids = list(self.fleet.fleet.device_ids)
        wait_until(lambda: self.fleet is not None and self.fleet.stats.connected == count,
                   TIMEOUT, "the fleet did not connect")
        return ids

    def deploy(self, firmware: Firmware, data: bytes, targets: list[str],
               window: float = 20.0) -> str:
        self.store.firmware.add(firmware, data)
        unsigned = OtaJobDocument.for_firmware(
            firmware, key_id=codesign.key_id(KEY), selftest_window_s=window,
            url=presigned_placeholder(f"firmware/{firmware.firmware_id}"))
        manifest = unsigned.manifest_for(key_id=codesign.key_id(KEY),
                                         issued_at=int(time.time()))
        document = dataclasses.replace(unsigned, manifest=sign_manifest(
            manifest, lambda b: (codesign.sign(KEY, b), codesign.key_id(KEY)))).to_json()
        deployment = self.store.deployments.create(Deployment(
            firmware_id=firmware.firmware_id, targets=tuple(targets), document=document))
        return deployment.deployment_id

    def finished(self, job_id: str) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            executions = self.store.deployments.executions(job_id)
            if all(e.status in TERMINAL for e in executions):
                return {e.device_id: e for e in executions}
            return None
        return wait_until(done, TIMEOUT, f"deployment {job_id} did not finish: "
                          f"{self.store.deployments.counts(job_id)}")

    def telemetry_after(self, device_id: str, since: float) -> dict[str, Any]:
        """The first reading the device sends after ``since`` (monotonic)."""
        topic = f"dt/{self.prefix}/{device_id}/telemetry"
        return self.recorder.wait_for(lambda m: m.topic == topic and m.at > since,
                                      timeout=TIMEOUT).json()

    def close(self) -> None:
        if self.fleet is not None:
            self.fleet.stop()
        self.recorder.close()


@pytest.fixture
def rig(mosquitto_broker, tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    hub = start_hub(store, mosquitto_broker,
                    file_server=FirmwareFileServer(store.firmware, expiry_s=600))
    rig = Rig(mosquitto_broker, store, f"ota{time.monotonic_ns() % 10**8}")
    yield rig
    rig.close()
    hub.stop()
    store.close()


def test_fleet_updates_and_reports_the_new_version(rig):
    devices = rig.start_fleet(4)
    firmware, data = firmware_image("1.1.0")
    job_id = rig.deploy(firmware, data, devices)
    executions = rig.finished(job_id)
    since = time.monotonic()
    for device_id in devices:
        execution = executions[device_id]
        assert execution.status is ExecutionStatus.SUCCEEDED, execution.status_details
        assert execution.status_details["step"] == "committed"
        assert execution.status_details["to_version"] == "1.1.0"
        body = rig.telemetry_after(device_id, since)
        assert body["fw"] == "1.1.0"
    # the reboot into the new image restarted seq and uptime, as any reboot does
    assert rig.fleet is not None
    assert all(d.ota.device is not None and d.ota.device.flash.record.active == "B"
               for d in (s.agent for s in rig.fleet.runtime.sessions))


def test_bad_signature_and_downgrade_are_rejected_by_every_device(rig):
    devices = rig.start_fleet(4)
    forged, data = firmware_image("1.2.0")
    forged = Firmware(forged.version, forged.device_type, forged.size, forged.sha256,
                      signature=codesign.sign(KEY, data + b"tampered"))
    bad = rig.finished(rig.deploy(forged, data, devices))
    assert {e.status for e in bad.values()} == {ExecutionStatus.REJECTED}
    assert {e.status_details["reason"] for e in bad.values()} == {"bad-signature"}

    old, old_data = firmware_image("0.9.0")
    down = rig.finished(rig.deploy(old, old_data, devices))
    assert {e.status for e in down.values()} == {ExecutionStatus.REJECTED}
    assert {e.status_details["reason"] for e in down.values()} == {"downgrade"}

    since = time.monotonic()
    assert {rig.telemetry_after(d, since)["fw"] for d in devices} == {"1.0.0"}


def test_power_loss_during_the_update_leaves_every_device_bootable(rig):
    # every device loses power once, at a step its seed picks; downloads also stall
    devices = rig.start_fleet(6, OtaFaults(power_loss_p=1.0, power_loss_step="any",
                                           stall_p=0.5, stall_s=4.0))
    firmware, data = firmware_image("1.1.0", size=100_000)
    executions = rig.finished(rig.deploy(firmware, data, devices, window=20.0))
    assert rig.fleet is not None
    agents = {s.device_id: s.agent for s in rig.fleet.runtime.sessions}
    since = time.monotonic()
    losses = 0
    for device_id in devices:
        execution = executions[device_id]
        device = agents[device_id].ota.device
        assert device is not None and not device.bricked
        assert bootable_after_power_loss(device.flash.record)
        losses += device.power_losses
        expected = "1.1.0" if execution.status is ExecutionStatus.SUCCEEDED else "1.0.0"
        if execution.status is not ExecutionStatus.SUCCEEDED:
            # power lost before the trial image confirmed itself: rolled back
            assert execution.status is ExecutionStatus.FAILED
            assert execution.status_details["reason"] == "selftest-failed"
        # the device is back, running what its final state says
        assert rig.telemetry_after(device_id, since)["fw"] == expected
    assert losses >= len(devices) // 2


def test_canceled_mid_download_devices_stop_cleanly(rig):
    # every download stalls for a while, long enough to cancel the deployment mid-way
    devices = rig.start_fleet(3, OtaFaults(stall_p=1.0, stall_s=600.0))
    firmware, data = firmware_image("1.1.0")
    job_id = rig.deploy(firmware, data, devices)
    assert rig.fleet is not None
    agents = [s.agent.ota for s in rig.fleet.runtime.sessions]
    wait_until(lambda: all(a.device is not None and a.device.busy for a in agents), TIMEOUT,
               "the devices did not start downloading")
    rig.store.deployments.cancel(job_id, force=True, reason="test")
    wait_until(lambda: all(a.device is not None and not a.device.busy
                           and a.device.flash.record.job is None for a in agents), TIMEOUT,
               "the devices did not drop the canceled job")
    assert {e.status for e in rig.store.deployments.executions(job_id)} == {
        ExecutionStatus.CANCELED}
    since = time.monotonic()
    assert {rig.telemetry_after(d, since)["fw"] for d in devices} == {"1.0.0"}
