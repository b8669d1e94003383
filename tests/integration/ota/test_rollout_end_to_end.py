"""OTA end to end: 200 simulated pumps, each its own MQTT session, against
the real hub (Jobs service, firmware file server, rollout engine), a real
mosquitto and a real SQLite store, with firmware signed by the real key store.

These are the issue's acceptance runs: an exponential rollout completes; with
30% injected failures a 10% abort threshold (minimum 20) cancels the job and at
most one rate step of devices is notified after the crossing; bad-signature
and downgrade images are rejected by every device with the reason.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from core.crypto import codesign
from core.crypto.keystore import CodeSigningKeys
from core.model import DeploymentStatus, ExecutionStatus, Firmware, SemVer
from core.model.roles import Actor, Role
from core.model.rollout import (
    AbortCriterion,
    ExponentialRate,
    FailureType,
    JobConfig,
    RolloutConfig,
)
from core.ports.fleet_api import DeploymentsApi, FirmwareApi
from core.ports.fleet_api.deployments import TargetSpec
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.hub import Hub
from simulator.api import RunningFleet
from simulator.fleet import DeviceGroup
from simulator.ota.faults import OtaFaults
from simulator.scenario import Scenario
from tests.integration.firmware.sessions import fleet_api
from tests.integration.hub.conftest import wait_until

DEVICES = 200
ROLLOUT_SPEED = 10.0  # rollout minutes pass 10x faster: a staged day in a CI minute
IMAGE = bytes((i * 131 + 7) % 251 for i in range(64_000))


@dataclass
class Rig:
    store: Store
    hub: Hub
    fleet: RunningFleet
    library: FirmwareApi
    ota: DeploymentsApi
    prefix: str

    def targets(self) -> TargetSpec:
        return TargetSpec("filter", text=self.prefix, device_types=("pump",))


def _rig(broker, tmp_path: Path, faults: OtaFaults | None, prefix: str) -> Iterator[Rig]:
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    hub = Hub(store, EventBus(), broker.host, broker.port, rollout_speed=ROLLOUT_SPEED)
    hub.start()
    assert hub.wait_connected(30)
    keys = CodeSigningKeys(tmp_path / "codesign")
    engineer = Actor("erin", Role.ENGINEER)
    api = fleet_api(store, keys, engineer)
    group = DeviceGroup(prefix.rstrip("-"), "pump", DEVICES, firmware="1.0.0", interval_s=10.0,
                        id_prefix=prefix.rstrip("-"))
    scenario = Scenario(name="ota e2e", groups=(group,), source="test")
    fleet = RunningFleet(scenario, broker_url=broker.url, seed=7, client_id_prefix=prefix,
                         trusted_keys=[keys.public_pem()], ota_faults=faults,
                         connect_rate=400).start()
    rig = Rig(store, hub, fleet, api.firmware, api.deployments, prefix=prefix)
    try:
        wait_until(lambda: len(store.registry.list(rig.targets().query())) >= DEVICES, 90,
                   "not every simulated pump registered with the hub")
        yield rig
    finally:
        fleet.stop()
        hub.stop()
        store.close()


def _prefix(request: pytest.FixtureRequest) -> str:
    """Device ids of their own per test: the session broker keeps other tests'
    retained statuses and persistent sessions."""
    return "ota" + hashlib.sha1(request.node.name.encode()).hexdigest()[:6] + "-"


@pytest.fixture
def rig(mosquitto_broker, tmp_path: Path, file_keyring: Path,
        request: pytest.FixtureRequest) -> Iterator[Rig]:
    yield from _rig(mosquitto_broker, tmp_path, None, _prefix(request))


@pytest.fixture
def failing_rig(mosquitto_broker, tmp_path: Path, file_keyring: Path,
                request: pytest.FixtureRequest) -> Iterator[Rig]:
    yield from _rig(mosquitto_broker, tmp_path, OtaFaults(failure_rate=0.3), _prefix(request))


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine without an OS keyring: the key's passphrase goes to the encrypted
    secrets file in a fresh data dir."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("SMARTIOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "data"


def _public_pem(rig: Rig) -> bytes:
    key = rig.library.signing_key()
    assert key is not None
    return key.public_pem


def _wait_finished(rig: Rig, deployment_id: str, timeout: float) -> None:
    wait_until(
        lambda: rig.store.deployments.get(deployment_id).status in (
            DeploymentStatus.COMPLETED, DeploymentStatus.CANCELED),
        timeout, f"deployment {deployment_id} did not finish",
    )


def test_exponential_rollout_completes_and_devices_report_the_new_version(rig: Rig) -> None:
    fw = rig.library.import_bytes(IMAGE, version="1.1.0", device_type="pump",
                                  release_notes="bearing-wear model v2")
    config = JobConfig(RolloutConfig(exponential=ExponentialRate(20, 2.0, notified=20)),
                       abort=(AbortCriterion(FailureType.ALL, 10, 20),),
                       in_progress_timeout_minutes=30)
    d = rig.ota.create(fw.firmware_id, rig.targets(), config)
    assert len(d.targets) == DEVICES
    _wait_finished(rig, d.deployment_id, 240)
    final = rig.store.deployments.get(d.deployment_id)
    counts = rig.store.deployments.counts(d.deployment_id)
    assert final.status is DeploymentStatus.COMPLETED, (final.reason, counts)
    assert counts == {"SUCCEEDED": DEVICES, "PENDING": 0}
    executions = rig.store.deployments.executions(d.deployment_id)
    assert all(e.status_details.get("step") == "committed" for e in executions)
    # The rate grew: releases came in batches that got bigger over time.
    batches = Counter(e.queued_at for e in executions)
    sizes = [batches[t] for t in sorted(batches)]
    assert max(sizes[len(sizes) // 2:]) > max(sizes[: max(1, len(sizes) // 4)])
    # Every device comes back with the new version in its telemetry.
    wait_until(
        lambda: all(dev.firmware_version == "1.1.0"
                    for dev in rig.store.registry.list(rig.targets().query())),
        120, "not every pump reported firmware 1.1.0 in telemetry",
    )


def _crossing(executions: list, threshold_pct: float, minimum: int) -> datetime:
    """When the abort criterion first became true, from the stored timestamps."""
    finished = sorted((e for e in executions if e.status.value in
                       ("SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT")),
                      key=lambda e: e.updated_at)
    failed = 0
    for executed, e in enumerate(finished, start=1):
        failed += e.status is ExecutionStatus.FAILED
        if executed >= minimum and failed * 100 >= threshold_pct * executed:
            return e.updated_at
    raise AssertionError("the abort criterion was never crossed")


def test_abort_threshold_cancels_within_one_rate_step(failing_rig: Rig) -> None:
    rig = failing_rig
    fw = rig.library.import_bytes(IMAGE, version="1.2.0", device_type="pump")
    config = JobConfig(RolloutConfig(maximum_per_minute=60),
                       abort=(AbortCriterion(FailureType.FAILED, 10, 20),))
    d = rig.ota.create(fw.firmware_id, rig.targets(), config)
    _wait_finished(rig, d.deployment_id, 240)
    final = rig.store.deployments.get(d.deployment_id)
    assert final.status is DeploymentStatus.CANCELED
    assert final.reason.startswith("automatic abort") and "FAILED" in final.reason
    executions = rig.store.deployments.executions(d.deployment_id)
    crossed_at = _crossing(executions, 10, 20)
    batches = Counter(e.queued_at for e in executions)
    step = max(batches.values())
    after = [e for e in executions if e.queued_at > crossed_at]
    assert len(after) <= step, (len(after), step)
    counts = rig.store.deployments.counts(d.deployment_id)
    failed = [e for e in executions if e.status is ExecutionStatus.FAILED]
    assert len(executions) < len(d.targets), (
        "the abort stopped the rollout before every device was told")
    assert counts["PENDING"] == 0 and sum(counts.values()) == len(d.targets)
    assert failed and all(e.status_details.get("reason") for e in failed)


def test_bad_signature_and_downgrade_are_rejected_by_every_device(rig: Rig) -> None:
    # A tampered image: bytes that do not match what the trusted key signed.
    good = rig.library.import_bytes(IMAGE, version="1.3.0", device_type="pump")
    evil = IMAGE[:-16] + os.urandom(16)
    rig.store.firmware.add(
        Firmware(SemVer.parse("1.4.0"), "pump", len(evil), hashlib.sha256(evil).hexdigest(),
                 signature=good.signature, key_id=good.key_id), evil)
    assert not codesign.verify(
        codesign.load_public_pem(_public_pem(rig)), evil, good.signature or b"")
    older = rig.library.import_bytes(IMAGE[:1000], version="0.9.0", device_type="pump",
                                     allow_downgrade=True)
    for firmware_id, reason in (("pump@1.4.0", "bad-signature"),
                                (older.firmware_id, "downgrade")):
        d = rig.ota.create(firmware_id, rig.targets(), JobConfig())
        _wait_finished(rig, d.deployment_id, 240)
        executions = rig.store.deployments.executions(d.deployment_id)
        assert len(executions) == DEVICES
        verdicts = Counter((e.status.value, e.status_details.get("reason"))
                           for e in executions)
        assert verdicts == {("REJECTED", reason): DEVICES}, verdicts
    ours = rig.store.registry.list(rig.targets().query())
    assert {dev.firmware_version for dev in ours} == {"1.0.0"}
