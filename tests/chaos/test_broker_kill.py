"""kill -9 of the broker in the middle of a firmware rollout, then a restart on
the same port and state (mosquitto with persistence). The simulated pumps, the
hub (persistent session) and an independent witness all reconnect by
themselves. The rollout resumes and completes, no device installs twice, every
execution update the hub confirmed is in the store, and every QoS 1 reading the
broker handed to the witness is stored exactly once, except what the broker took
in its last unsaved second: a kill -9 loses that for every subscriber it had not
yet reached, and the report counts it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from core.crypto.keystore import CodeSigningKeys
from core.model import DeploymentStatus
from core.model.roles import Actor, Role
from core.model.rollout import JobConfig, RolloutConfig
from core.ports.fleet_api.deployments import TargetSpec
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.hub import Hub
from simulator.api import RunningFleet
from simulator.fleet import DeviceGroup
from simulator.ota.agent import OtaAgent
from simulator.scenario import Scenario
from tests.chaos.conftest import report
from tests.chaos.rig import Witness, stored_keys, wait_all_stored, wait_until
from tests.integration.firmware.sessions import fleet_api

PUMPS = 20
DOWN_S = 3.0
#: How long before the kill mosquitto's persistence may not have saved what it took:
#: the autosave interval (1 s) and the save itself, with margin.
UNSAVED_S = 2.5
IMAGE = bytes((i * 131 + 7) % 251 for i in range(32_000))


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine without an OS keyring, as the OTA end-to-end tests."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("SMARTIOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("SMARTIOT_CODESIGN_PASSPHRASE", "chaos-test-passphrase")
    return tmp_path / "data"


@pytest.fixture
def installs(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often each device switched to a new running version (an install);
    the pumps start on 1.0.0."""
    counts: Counter[str] = Counter()
    running: dict[str, str] = {}
    real = OtaAgent.set_firmware

    def counting(self: OtaAgent, version: str) -> None:
        device = self.session.device_id
        if running.get(device, "1.0.0") != version:
            counts[device] += 1
        running[device] = version
        real(self, version)

    monkeypatch.setattr(OtaAgent, "set_firmware", counting)
    return counts


def test_broker_kill_9_mid_rollout(broker, tmp_path: Path, file_keyring: Path,
                                   installs: Counter[str]) -> None:
    db = tmp_path / "hub.db"
    store = Store.open(f"sqlite:///{db}")
    hub = Hub(store, EventBus(), broker.host, broker.port, rollout_speed=10.0,
              client_id=f"chaos-hub-{time.monotonic_ns()}")
    hub.start()
    assert hub.wait_connected(10)
    witness = Witness(broker.host, broker.port, f"bk-{time.monotonic_ns()}")
    keys = CodeSigningKeys(tmp_path / "codesign")
    engineer = Actor("erin", Role.ENGINEER)
    api = fleet_api(store, keys, engineer)
    library, ota = api.firmware, api.deployments
    group = DeviceGroup("bkp", "pump", PUMPS, firmware="1.0.0", interval_s=0.5,
                        id_prefix="bkp")
    fleet = RunningFleet(Scenario("chaos rollout", (group,), source="test"),
                         broker_url=broker.url, seed=3, client_id_prefix="bkp-",
                         trusted_keys=[keys.public_pem()], telemetry_qos=1).start()
    states: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.1):
            states.append(hub.snapshot()["connection"])

    threading.Thread(target=watch, daemon=True).start()
    targets = TargetSpec("filter", text="bkp", device_types=("pump",))
    try:
        wait_until(lambda: len(store.registry.list(targets.query())) >= PUMPS, 60,
                   "not every pump registered")
        fw = library.import_bytes(IMAGE, version="1.1.0", device_type="pump")
        deployment = ota.create(fw.firmware_id, targets,
                                JobConfig(RolloutConfig(maximum_per_minute=20)))
        job = deployment.deployment_id

        def succeeded() -> int:
            return store.deployments.counts(job).get("SUCCEEDED", 0)

        wait_until(lambda: succeeded() >= 3, 120, "the rollout did not start")
        before = succeeded()
        assert before < PUMPS, "the rollout finished before the fault"
        broker.kill9()
        killed = time.monotonic()
        wait_until(lambda: states and states[-1] != "connected", 30,
                   "the hub's status still says connected with the broker gone")
        time.sleep(DOWN_S)
        broker.start()
        restarted = time.monotonic()
        wait_until(lambda: hub.link.state == "connected", 60, "the hub did not reconnect")
        reconnected_after = time.monotonic() - restarted
        wait_until(lambda: succeeded() > before, 120, "the rollout did not resume")
        resumed_after = time.monotonic() - restarted
        wait_until(lambda: store.deployments.get(job).status is DeploymentStatus.COMPLETED,
                   180, "the rollout did not complete after the broker restart")
        executions = store.deployments.executions(job)
        assert len(executions) == PUMPS
        assert all(e.execution_number == 1 for e in executions), "a device was released twice"
        assert store.deployments.counts(job).get("SUCCEEDED") == PUMPS
        wait_until(lambda: all(d.firmware_version == "1.1.0"
                               for d in store.registry.list(targets.query())), 60,
                   "not every pump reports 1.1.0")
        assert set(installs) == {f"bkp-{i:05d}" for i in range(PUMPS)}
        assert max(installs.values()) == 1, f"applied twice: {installs.most_common(3)}"

        fleet.stop()
        time.sleep(1.0)
        # What mosquitto accepted after its last save (autosave_interval 1) and had
        # not yet sent to the hub dies with it; the witness may have had it already.
        # Everything the witness had earlier, or got after the restart, is demanded.
        expected = witness.received_outside(killed - UNSAVED_S, killed)
        wait_all_stored(expected, db, what="readings the broker delivered to the witness",
                        witness=witness, since=killed, event="kill", store=store, hub=hub)
        unsaved = witness.snapshot() - set(stored_keys(db))
        assert max(stored_keys(db).values()) == 1
        report("broker-kill-9", down_s=f"{restarted - killed:.1f}",
               hub_reconnected_after_s=f"{reconnected_after:.1f}",
               rollout_resumed_after_s=f"{resumed_after:.1f}", pumps=PUMPS,
               released_twice=0, installed_twice=0, readings=len(expected),
               lost=0, stored_twice=0, lost_with_the_brokers_unsaved_second=len(unsaved))
    finally:
        done.set()
        fleet.stop()
        witness.close()
        hub.stop(timeout_s=5)
        store.close()
