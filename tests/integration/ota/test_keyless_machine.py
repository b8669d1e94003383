"""A machine without an OS keyring (a headless box, a container, CI): the demo
fleet is up before any code-signing key exists; `smartiot firmware add` makes
the key through the encrypted secrets file, and the fleet, which re-reads the
console's key files, installs the image. Before, `firmware add` failed with
NoKeyringError and the fleet trusted no key until the app was restarted."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import load_config
from core.context import AppContext
from core.model import ExecutionStatus
from core.plugins import PluginManager
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.backend import demo_trusted_key_paths
from plugins.local.hub.hub import Hub
from simulator.api import RunningFleet
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.integration.hub.conftest import wait_until

ROOT = Path(__file__).resolve().parents[3]
DEVICES = 4


@pytest.fixture
def keyless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SMARTIOT_CODESIGN_PASSPHRASE", "SMARTIOT_SECRETS_PASSPHRASE")}
    env.update(PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
               SMARTIOT_DATA_DIR=str(tmp_path / "data"),
               SMARTIOT_CONFIG=str(tmp_path / "config.toml"),
               XDG_DATA_HOME=str(tmp_path / "xdg"))
    for key, value in env.items():
        if key.startswith(("SMARTIOT_", "PYTHON_KEYRING", "XDG_")):
            monkeypatch.setenv(key, value)
    (tmp_path / "data").mkdir()
    return env


def smartiot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console.cli", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=180)


@pytest.fixture
def site(mosquitto_broker, keyless: dict[str, str], tmp_path: Path
         ) -> Iterator[tuple[Store, RunningFleet, Path]]:
    data = tmp_path / "data"
    context = AppContext(load_config(tmp_path / "config.toml", data), PluginManager())
    store = Store.open(context.config.database_url)
    hub = Hub(store, EventBus(), mosquitto_broker.host, mosquitto_broker.port,
              rollout_speed=10.0)
    hub.start()
    group = DeviceGroup("keyless", "pump", DEVICES, firmware="1.0.0", interval_s=5.0,
                        id_prefix="keyless-pump")
    fleet = RunningFleet(Scenario(name="keyless", groups=(group,), source="test"),
                         broker_url=mosquitto_broker.url, seed=3, client_id_prefix="keyless-",
                         trusted_key_paths=demo_trusted_key_paths(context)).start()
    try:
        assert hub.wait_connected(30)
        wait_until(lambda: len([d for d in store.registry.list()
                                if d.device_id.startswith("keyless-pump")]) >= DEVICES, 180,
                   "the keyless fleet did not register")
        yield store, fleet, data
    finally:
        fleet.stop()
        hub.stop()
        store.close()


def test_firmware_add_and_deploy_without_a_keyring(
        site: tuple[Store, RunningFleet, Path], keyless: dict[str, str], tmp_path: Path) -> None:
    store, _fleet, data = site
    assert not (data / "codesign").exists(), "the fleet started before any key existed"
    image = tmp_path / "pump-1.1.0.bin"
    image.write_bytes(os.urandom(40_000))
    added = smartiot(keyless, "firmware", "add", str(image), "--version", "1.1.0",
                     "--type", "pump")
    assert added.returncode == 0, added.stderr
    assert (data / "secrets.enc").exists() and (data / "codesign" / "signing-key.pem").exists()
    config = smartiot(keyless, "config").stdout
    assert f"encrypted file {data / 'secrets.enc'}" in config
    verified = smartiot(keyless, "firmware", "verify")
    assert verified.returncode == 0 and "trusted by this console's devices" in verified.stdout

    # The broker is shared with other tests, whose retained statuses may register their
    # devices here too: this test deploys to and checks its own fleet only.
    ours = sorted(d.device_id for d in store.registry.list()
                  if d.device_id.startswith("keyless-pump"))
    assert len(ours) == DEVICES
    created = smartiot(keyless, "deploy", "create", "--firmware", "pump@1.1.0",
                       "--devices", ",".join(ours), "--rate", "100")
    assert created.returncode == 0, created.stderr
    deployment_id = created.stdout.split("created ")[1].split(":")[0]

    def finished() -> list[ExecutionStatus] | None:
        executions = store.deployments.executions(deployment_id)
        statuses = [e.status for e in executions]
        done = len(statuses) == DEVICES and all(s.is_terminal for s in statuses)
        return statuses if done else None

    statuses = wait_until(finished, 300, "the deployment did not finish")
    details = [e.status_details for e in store.deployments.executions(deployment_id)]
    assert statuses == [ExecutionStatus.SUCCEEDED] * DEVICES, details
    wait_until(lambda: {store.registry.get(d).firmware_version for d in ours} == {"1.1.0"},
               180, "the devices did not report 1.1.0")
