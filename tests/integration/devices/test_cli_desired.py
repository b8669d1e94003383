"""``smartiot devices desired`` through the real CLI against a real ``smartiot
hub`` subprocess, a real mosquitto and a simulated device: the desired state is
stored by the hub's shadow service, the device follows and reports it, and the
change is audited like the Devices page's (finding 9 of the team set-up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from core.store import Store
from plugins.devices.commands import parse_assignments
from simulator.api import RunningFleet
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.integration.hub.conftest import wait_until


def _env(tmp_path, role: str = "") -> dict[str, str]:
    env = {**os.environ, "SMARTIOT_CONFIG": str(tmp_path / "config.toml"),
           "SMARTIOT_DATA_DIR": str(tmp_path / "data"),
           # the team's people belong to the fleet's organization: another
           # organization's devices are unknown to them
           "SMARTIOT_ORGANIZATION": "des"}
    env.pop("SMARTIOT_ROLE", None)
    if role:
        env["SMARTIOT_ROLE"] = role
    return env


def smartiot(tmp_path, *args: str, role: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console.cli", *args], capture_output=True,
                          text=True, env=_env(tmp_path, role), timeout=120, cwd=tmp_path)


@pytest.fixture(scope="module")
def hub(mosquitto_broker, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("desired-hub")
    database = f"sqlite:///{tmp_path / 'team.db'}"
    Store.open(database).close()
    process = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "hub", "--broker", mosquitto_broker.url,
         "--database", database, "--status-every", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(tmp_path))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")),
                              daemon=True)
    reader.start()
    fleet = None
    try:
        wait_until(lambda: any(li.startswith("hub running") for li in list(lines))
                   or process.poll() is not None, timeout=60)
        assert process.poll() is None, "".join(lines)
        fleet = RunningFleet(Scenario("des", (DeviceGroup(
            "env", "environmental", 1, org="des", interval_s=1.0, id_prefix="des"),)),
            broker_url=mosquitto_broker.url, client_id_prefix="des-").start()
        with Store.open(database) as store:
            wait_until(lambda: store.registry.find("des-00000") is not None, timeout=30,
                       message="".join(lines))
        yield tmp_path, database, ("--broker", mosquitto_broker.url, "--database", database)
    finally:
        if fleet is not None:
            fleet.stop()
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=10)


def test_desired_state_from_the_cli_is_stored_followed_and_audited(hub):
    tmp_path, database, common = hub
    (tmp_path / "setpoints.json").write_text(json.dumps({"setpoints": {"hvac_setpoint_c": 21.5}}))
    result = smartiot(tmp_path, "devices", "desired", "des-00000", "interval=3",
                      "--file", "setpoints.json", "--wait", "60", "--json", *common)
    assert result.returncode == 0, result.stderr
    assert "reported state follows" in result.stdout
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown["desired"]["interval"] == 3
    assert shown["reported"]["interval"] == 3
    assert shown["reported"]["setpoints"]["hvac_setpoint_c"] == 21.5
    with Store.open(database) as store:
        document = store.shadows.get("des-00000")
        assert document is not None and document.reported["interval"] == 3
        audited = [e for e in store.audit.entries() if e.action == "device.desired"]
    assert [(e.subject, e.details["desired"]) for e in audited] == [
        ("des-00000", {"setpoints": {"hvac_setpoint_c": 21.5}, "interval": 3})]


def test_support_is_refused_by_the_service_and_the_attempt_is_audited(hub):
    tmp_path, database, common = hub
    result = smartiot(tmp_path, "devices", "desired", "des-00000", "interval=9", *common,
                      role="support")
    assert result.returncode == 1
    assert "may not change a device's desired state" in result.stderr
    with Store.open(database) as store:
        denied = [e for e in store.audit.entries()
                  if e.action == "device.desired" and e.details.get("outcome") == "denied"]
        assert store.shadows.get("des-00000").desired.get("interval") != 9
    assert denied and denied[-1].details["role"] == "support"


def test_bad_input_is_named_and_sends_nothing(hub):
    tmp_path, _database, common = hub
    missing = smartiot(tmp_path, "devices", "desired", "des-00000", "interval", *common)
    assert missing.returncode == 2 and "'interval': expected KEY=VALUE" in missing.stderr
    (tmp_path / "list.json").write_text("[1, 2]")
    not_object = smartiot(tmp_path, "devices", "desired", "des-00000", "--file", "list.json",
                          *common)
    assert not_object.returncode == 2 and "list.json: desired state must be a JSON object" \
        in not_object.stderr
    unknown = smartiot(tmp_path, "devices", "desired", "nobody", "interval=3", *common)
    assert unknown.returncode == 1 and "nobody" in unknown.stderr


def test_assignments_parse_json_values_and_nest_dotted_keys():
    assert parse_assignments(["interval=5", "setpoints.temperature=21", "setpoints.mode=eco",
                              "label=hall a", "old=null", "on=true"]) == {
        "interval": 5, "setpoints": {"temperature": 21, "mode": "eco"}, "label": "hall a",
        "old": None, "on": True}
