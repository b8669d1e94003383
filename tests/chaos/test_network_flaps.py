"""Ten network flaps, 5 s on and 5 s off, between the broker and everyone else
(the hub and the simulated pumps talk to mosquitto through a TCP proxy the test
cuts and restores) during a firmware rollout and QoS 1 telemetry, as Mender's
tests cut the network during deployments. The rollout completes, no pump is
released or installs twice, every reading the broker accepted is stored once,
and the hub's status says it lost the broker while it had."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

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
from simulator.scenario import Scenario
from tests.chaos.conftest import report
from tests.chaos.rig import TcpProxy, Witness, stored_keys, wait_all_stored, wait_until
from tests.chaos.test_broker_kill import IMAGE, file_keyring, installs  # noqa: F401 - fixtures
from tests.integration.firmware.sessions import fleet_api

PUMPS = 10
FLAPS = 10
ON_S = OFF_S = 5.0


def test_ten_network_flaps_during_a_rollout(broker, tmp_path: Path, file_keyring: Path,  # noqa: F811
                                            installs: Counter[str]) -> None:  # noqa: F811
    proxy = TcpProxy(broker.host, broker.port)
    db = tmp_path / "hub.db"
    store = Store.open(f"sqlite:///{db}")
    hub = Hub(store, EventBus(), proxy.host, proxy.port, rollout_speed=10.0,
              client_id=f"chaos-hub-{time.monotonic_ns()}")
    hub.start()
    assert hub.wait_connected(10)
    witness = Witness(broker.host, broker.port, f"flap-{time.monotonic_ns()}")
    keys = CodeSigningKeys(tmp_path / "codesign")
    engineer = Actor("erin", Role.ENGINEER)
    api = fleet_api(store, keys, engineer)
    library, ota = api.firmware, api.deployments
    group = DeviceGroup("flp", "pump", PUMPS, firmware="1.0.0", interval_s=0.5,
                        id_prefix="flp")
    fleet = RunningFleet(Scenario("chaos flaps", (group,), source="test"),
                         broker_url=proxy.url, seed=5, client_id_prefix="flp-",
                         trusted_keys=[keys.public_pem()], telemetry_qos=1).start()
    states: list[tuple[bool, str]] = []  # (network up, hub connection) as it went
    network_up = [True]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.1):
            states.append((network_up[0], hub.snapshot()["connection"]))

    threading.Thread(target=watch, daemon=True).start()
    targets = TargetSpec("filter", text="flp", device_types=("pump",))
    try:
        wait_until(lambda: len(store.registry.list(targets.query())) >= PUMPS, 60,
                   "not every pump registered")
        fw = library.import_bytes(IMAGE, version="1.2.0", device_type="pump")
        job = ota.create(fw.firmware_id, targets,
                         JobConfig(RolloutConfig(maximum_per_minute=10))).deployment_id
        wait_until(lambda: store.deployments.executions(job), 60, "the rollout did not start")
        reconnects = []
        for _ in range(FLAPS):
            proxy.down()
            network_up[0] = False
            time.sleep(OFF_S)
            proxy.up()
            network_up[0] = True
            back = time.monotonic()
            try:
                wait_until(lambda: hub.link.state == "connected", ON_S, every=0.05)
                reconnects.append(time.monotonic() - back)
            except AssertionError:
                reconnects.append(float("inf"))
            time.sleep(max(0.0, ON_S - (time.monotonic() - back)))
        assert proxy.cuts == FLAPS
        assert any(not up and state != "connected" for up, state in states), \
            "the hub's status never said it lost the broker"
        finished_at = time.monotonic()
        wait_until(lambda: store.deployments.get(job).status is DeploymentStatus.COMPLETED,
                   120, "the rollout did not complete after the flaps")
        completed_after = time.monotonic() - finished_at
        executions = store.deployments.executions(job)
        assert len(executions) == PUMPS
        assert all(e.execution_number == 1 for e in executions), "a device was released twice"
        assert store.deployments.counts(job).get("SUCCEEDED") == PUMPS
        assert max(installs.values()) == 1, f"applied twice: {installs.most_common(3)}"
        assert len(installs) == PUMPS

        fleet.stop()
        time.sleep(1.0)
        expected = witness.snapshot()
        wait_all_stored(expected, db, what="readings the broker accepted", witness=witness,
                        since=finished_at, event="last flap", store=store, hub=hub)
        assert max(stored_keys(db).values()) == 1
        finite = [r for r in reconnects if r != float("inf")]
        report("network-flaps", flaps=FLAPS, on_off_s=f"{ON_S:.0f}/{OFF_S:.0f}",
               hub_reconnect_s_median=f"{sorted(finite)[len(finite) // 2]:.1f}",
               hub_reconnect_s_max=f"{max(finite):.1f}",
               windows_missed=len(reconnects) - len(finite),
               rollout_completed_after_last_flap_s=f"{completed_after:.1f}",
               pumps=PUMPS, released_twice=0, installed_twice=0,
               readings=len(expected), lost=0, stored_twice=0)
    finally:
        done.set()
        fleet.stop()
        witness.close()
        hub.stop(timeout_s=5)
        store.close()
        proxy.close()
