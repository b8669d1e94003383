"""Every set-up logs in: the embedded broker (mosquitto and amqtt), the
console's own backend on it, and `smartiot simulate` against a team broker."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from console.cli import main as smartiot
from core.config import load_config
from core.context import AppContext
from core.model.device import DeviceStatus
from core.plugins import PluginManager
from core.ports.commands import CommandOutcome
from plugins.local.backend import build_local_backend
from simulator.api import RunningFleet
from simulator.broker import EmbeddedBroker, find_free_port, find_mosquitto, wait_for_port
from simulator.broker_auth import HUB_PASSWORD, HUB_USER, stored_secret
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.security.conftest import SecureBroker, wait_until


def _secure(kind: str, broker: EmbeddedBroker) -> SecureBroker:
    return SecureBroker(kind, broker.host, broker.port, {}, broker.log_text)


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
def test_embedded_broker_refuses_strangers_and_admits_added_devices(kind: str) -> None:
    with EmbeddedBroker(prefer=kind, devices=["emb-1"]) as broker:
        assert broker.kind == kind
        rig = _secure(kind, broker)
        try:
            assert rig.connect(None, None, expect_ok=False).connack[0].is_failure
            late_user, late_password = broker.device_login("emb-late")
            assert rig.connect(late_user, late_password, client_id="emb-late",
                               expect_ok=False).connack[0].is_failure
            rig.connect(*broker.device_login("emb-1"), client_id="emb-1")
            broker.add_devices(["emb-late"])
            rig.connect(late_user, late_password, client_id="emb-late")
        finally:
            rig.close_clients()


def test_a_fleet_with_its_own_broker_logs_every_device_in() -> None:
    scenario = Scenario("own", (DeviceGroup("own", "environmental", 3, interval_s=1.0),))
    running = RunningFleet(scenario).start()
    try:
        assert running.broker is not None and running.broker.credentials is not None
        wait_until(lambda: running.stats.connected == 3, message="3 devices logged in")
        assert running.stats.connect_errors == 0
    finally:
        running.stop()


def test_console_backend_on_its_embedded_broker(tmp_path: Path) -> None:
    """The default profile: hub, console and demo fleet log in to the console's
    own broker, commands round-trip, and nobody else gets in."""
    config = load_config(tmp_path / "config.toml", tmp_path / "data", env={})
    assert config.profile.broker == "embedded"
    context = AppContext(config, PluginManager(entry_points=False, blocked=()))
    backend = build_local_backend(context, demo_fleet=True)
    try:
        assert backend.broker.credentials is not None
        assert backend.hub is not None and backend.hub.wait_connected(20)
        assert backend.client is not None and backend.client.link.wait_connected(20)
        device = wait_until(lambda: next((d for d in backend.registry.list()
                                          if d.status is DeviceStatus.ONLINE), None), 60,
                            "a demo device online (its status reached the hub)")
        result = backend.commands.send(device.device_id, "ping").result(20)
        assert result.outcome is CommandOutcome.OK, result
        rig = _secure(backend.broker.kind, backend.broker)
        try:
            assert rig.connect(None, None, expect_ok=False).connack[0].is_failure
        finally:
            rig.close_clients()
    finally:
        backend.close()


def test_simulate_logs_each_device_in_to_a_team_broker(tmp_path: Path) -> None:
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed; run `make test`")
    port = find_free_port()
    out = tmp_path / "broker"
    assert smartiot(["broker", "config", "--out", str(out), "--devices", "3",
                     "--bind", "127.0.0.1", "--port", str(port)]) == 0
    log = tmp_path / "mosquitto.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen([find_mosquitto() or "mosquitto", "-c",
                                    str(out / "mosquitto.conf")],
                                   stdout=handle, stderr=subprocess.STDOUT)
    try:
        assert wait_for_port("127.0.0.1", port, 10), log.read_text()
        rig = SecureBroker("mosquitto", "127.0.0.1", port, {}, log.read_text)
        watcher = rig.connect(HUB_USER, stored_secret(HUB_PASSWORD))
        watcher.subscribe("dt/+/+/telemetry")
        result = subprocess.run(
            [sys.executable, "-m", "console.cli", "simulate", "--devices", "3",
             "--type", "environmental", "--rate", "2",
             "--broker", f"mqtt://127.0.0.1:{port}", "--duration", "3"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "SMARTIOT_ENTRY_POINTS": "0"})
        assert result.returncode == 0, result.stderr
        assert "connection errors" not in result.stdout, result.stdout
        expected = {"env-00000", "env-00001", "env-00002"}
        wait_until(lambda: {topic.split("/")[2] for topic, _ in watcher.received} == expected,
                   message="telemetry from each simulated device")
        rig.close_clients()
    finally:
        process.terminate()
        process.wait(10)


def test_team_hub_and_console_log_in_with_their_stored_passwords(tmp_path: Path) -> None:
    """The lab profile: the hub and this console take their broker passwords from
    the secret store (never the config), and a console's command reaches a
    simulated device that logged in as itself."""
    from core.secrets import delete_secret, set_secret
    from simulator.broker_auth import FLEET_SECRET, console_secret_name
    from simulator.target import BrokerTarget

    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed; run `make test`")
    config = load_config(tmp_path / "config.toml", tmp_path / "data", env={})
    person = AppContext(config, PluginManager(entry_points=False, blocked=())).actor.user
    port = find_free_port()
    out = tmp_path / "broker"
    assert smartiot(["broker", "config", "--out", str(out), "--devices", "2", "--prefix", "lab",
                     "--bind", "127.0.0.1", "--port", str(port),
                     "--console", f"{person}:engineer"]) == 0
    set_secret("broker.password", stored_secret(console_secret_name(person)) or "")
    log = tmp_path / "mosquitto.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen([find_mosquitto() or "mosquitto", "-c",
                                    str(out / "mosquitto.conf")],
                                   stdout=handle, stderr=subprocess.STDOUT)
    backend = fleet = None
    try:
        assert wait_for_port("127.0.0.1", port, 10), log.read_text()
        url = f"mqtt://127.0.0.1:{port}"
        profile = dataclasses.replace(config.profile, broker=url, demo_fleet=False, hub=True)
        config = dataclasses.replace(config, profiles={**config.profiles, "local": profile})
        backend = build_local_backend(AppContext(config, PluginManager(entry_points=False,
                                                                       blocked=())))
        assert backend.broker is None  # nothing embedded: the team's broker
        assert backend.hub is not None and backend.hub.wait_connected(20), log.read_text()
        assert backend.client is not None and backend.client.link.wait_connected(20)
        fleet = RunningFleet(
            Scenario("lab", (DeviceGroup("lab", "pump", 2, interval_s=1.0),)),
            target=BrokerTarget.parse(url, fleet_secret=stored_secret(FLEET_SECRET))).start()
        wait_until(lambda: any(d.device_id == "lab-00001" and d.status is DeviceStatus.ONLINE
                               for d in backend.registry.list()), 60, "lab-00001 online")
        result = backend.commands.send("lab-00001", "ping").result(20)
        assert result.outcome is CommandOutcome.OK, result
        assert f"u'console.{person}'" in log.read_text()
        assert "u'smartiot.hub'" in log.read_text()
    finally:
        if fleet is not None:
            fleet.stop()
        if backend is not None:
            backend.close()
        delete_secret("broker.password")
        process.terminate()
        process.wait(10)


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
def test_simulate_from_another_shell_joins_a_consoles_embedded_broker(kind: str) -> None:
    """QA points `smartiot simulate --broker` at the console's embedded broker:
    the simulator (same OS user) adds its devices to that broker's password
    file, twice in a row with the same ids, and every device logs in."""
    with EmbeddedBroker(prefer=kind, devices=["console-demo-1"]) as broker:
        rig = _secure(kind, broker)
        try:
            watcher = rig.connect(*broker.hub_login)
            watcher.subscribe("dt/+/+/telemetry")
            for _run in range(2):
                result = subprocess.run(
                    [sys.executable, "-m", "console.cli", "simulate", "--devices", "3",
                     "--type", "pump", "--rate", "2", "--duration", "2",
                     "--broker", broker.url],
                    capture_output=True, text=True, timeout=120,
                    env={**os.environ, "SMARTIOT_ENTRY_POINTS": "0"})
                assert result.returncode == 0, result.stderr
                assert f"added 3 devices to the embedded {kind} broker" in result.stderr
                assert "connection errors" not in result.stdout, result.stdout
            expected = {"pump-00000", "pump-00001", "pump-00002"}
            wait_until(lambda: {t.split("/")[2] for t, _ in watcher.received} == expected,
                       message="telemetry from each simulated pump")
        finally:
            rig.close_clients()


def test_a_second_shard_does_not_re_key_the_first_shards_devices() -> None:
    """Each shard adds only its own devices to the console's embedded broker; a
    shard that re-keyed the others would lock them out at their next reconnect."""
    def run(shard: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "console.cli", "simulate", "--devices", "4", "--type",
             "pump", "--rate", "2", "--duration", "2", "--shard", shard,
             "--broker", broker.url],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "SMARTIOT_ENTRY_POINTS": "0"})
        assert result.returncode == 0, result.stderr
        assert "added 2 devices" in result.stderr
        assert "connection errors" not in result.stdout, result.stdout
        return result

    def lines() -> dict[str, str]:
        text = (Path(broker._auth_dir or ".") / "passwd").read_text()
        return {line.partition(":")[0]: line for line in text.splitlines()}

    with EmbeddedBroker(prefer="mosquitto") as broker:
        run("1/2")  # pumps 0 and 2
        first = lines()
        assert {"pump-00000", "pump-00002"} <= set(first) and "pump-00001" not in first
        run("2/2")  # pumps 1 and 3
        second = lines()
        assert second["pump-00000"] == first["pump-00000"]
        assert second["pump-00002"] == first["pump-00002"]
        assert {"pump-00001", "pump-00003"} <= set(second)
