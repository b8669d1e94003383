"""The command line as people type it, against a real `smartiot hub` subprocess, a
real mosquitto and simulated devices: global options after the subcommand,
`devices register`, `devices command` and `alerts snooze`/`ack` without a comment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest

from core.model import Alert, AlertState, CommandStatus
from core.store import Store
from simulator.api import RunningFleet
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.integration.hub.conftest import wait_until


def _env(tmp_path) -> dict[str, str]:
    return {**os.environ, "SMARTIOT_CONFIG": str(tmp_path / "config.toml"),
            "SMARTIOT_DATA_DIR": str(tmp_path / "data"), "SMARTIOT_USER": "maria",
            # maria works for the fleet's organization: in a team set-up another
            # organization's devices are unknown to her
            "SMARTIOT_ORGANIZATION": "cli"}


def smartiot(tmp_path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console.cli", *args], capture_output=True,
                          text=True, env=_env(tmp_path), timeout=timeout)


@pytest.fixture(scope="module")
def hub_and_fleet(mosquitto_broker, tmp_path_factory):
    """`smartiot hub --broker … --database …`: the global options after the command,
    the way the issue's user typed them (argparse refused them before)."""
    tmp_path = tmp_path_factory.mktemp("cli-hub")
    database = f"sqlite:///{tmp_path / 'team.db'}"
    Store.open(database).close()  # migrated before two processes race to do it
    hub = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "hub", "--broker", mosquitto_broker.url,
         "--database", database, "--status-every", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(tmp_path))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(hub.stdout.readline, "")),
                              daemon=True)
    reader.start()
    fleet = None
    try:
        wait_until(lambda: any(li.startswith("hub running") for li in list(lines))
                   or hub.poll() is not None, timeout=60)
        assert hub.poll() is None, "".join(lines)
        assert mosquitto_broker.url in "".join(lines)
        fleet = RunningFleet(Scenario("cli", (DeviceGroup(
            "env", "environmental", 2, org="cli", interval_s=1.0, id_prefix="cli"),)),
            broker_url=mosquitto_broker.url, client_id_prefix="cli-").start()
        with Store.open(database) as store:
            wait_until(lambda: {"cli-00000", "cli-00001"} <= {
                d.device_id for d in store.registry.list()}, timeout=30,
                message="".join(lines))
        yield tmp_path, database, mosquitto_broker.url
    finally:
        if fleet is not None:
            fleet.stop()
        hub.terminate()
        hub.wait(timeout=30)
        reader.join(timeout=10)


def test_global_options_before_or_after_the_subcommand(tmp_path):
    before = smartiot(tmp_path, "--profile", "lab", "config")
    after = smartiot(tmp_path, "config", "--profile", "lab")
    assert before.returncode == after.returncode == 0, after.stderr
    assert "profile     : lab" in after.stdout
    assert before.stdout == after.stdout
    nested = smartiot(tmp_path, "devices", "list", "--database",
                      f"sqlite:///{tmp_path / 'nested.db'}", "--json")
    assert nested.returncode == 0, nested.stderr
    assert json.loads(nested.stdout) == []
    assert (tmp_path / "nested.db").exists()  # the option after `list` was honoured


def test_register_then_list_shows_name_tags_and_place(hub_and_fleet):
    tmp_path, database, _broker = hub_and_fleet
    result = smartiot(tmp_path, "devices", "register", "pump-h3", "--type", "pump",
                      "--name", "Pump house 3", "--tag", "site=berlin", "--tag", "hall-a",
                      "--lat", "52.52", "--lon", "13.405", "--place", "Pump house 3",
                      "--database", database)
    assert result.returncode == 0, result.stderr
    assert "registered pump-h3 (pump" in result.stdout
    shown = json.loads(smartiot(tmp_path, "devices", "show", "pump-h3", "--json",
                                "--database", database).stdout)
    assert shown["name"] == "Pump house 3"
    assert shown["tags"] == ["hall-a", "site=berlin"]
    assert shown["location"] == {"latitude": 52.52, "longitude": 13.405,
                                 "label": "Pump house 3"}
    again = smartiot(tmp_path, "devices", "register", "pump-h3", "--type", "pump",
                     "--database", database)
    assert again.returncode == 2 and "already registered" in again.stderr
    half = smartiot(tmp_path, "devices", "register", "pump-h4", "--type", "pump",
                    "--lat", "52.5", "--database", database)
    assert half.returncode == 2 and "--lat and --lon" in half.stderr


def test_command_round_trips_are_answered_and_logged(hub_and_fleet):
    tmp_path, database, broker = hub_and_fleet
    common = ("--broker", broker, "--database", database)
    ping = smartiot(tmp_path, "devices", "command", "cli-00000", "ping", *common)
    assert ping.returncode == 0, ping.stderr
    assert ping.stdout.startswith("cli-00000: ping ok in ")
    interval = smartiot(tmp_path, "devices", "command", "cli-00001", "set-interval", "3",
                        "--json", *common)
    assert interval.returncode == 0, interval.stderr
    answer = json.loads(interval.stdout)
    assert answer["outcome"] == "ok" and answer["command"] == "set-interval"
    identify = smartiot(tmp_path, "devices", "command", "cli-00001", "identify", "5", *common)
    assert identify.returncode == 0, identify.stderr
    with Store.open(database) as store:
        records = store.commands.list_for("cli-00001", limit=10)
        audited = [e for e in store.audit.entries() if e.action == "device.command"]
    assert [(r.command, r.status) for r in records[:2]] == [
        ("identify", CommandStatus.OK), ("set-interval", CommandStatus.OK)]
    assert records[1].params == {"seconds": 3.0}
    assert all(r.requested_by for r in records)
    # audited like the Devices page's buttons (the same use case)
    assert [(e.subject, e.details["command"]) for e in audited] == [
        ("cli-00000", "ping"), ("cli-00001", "set-interval"), ("cli-00001", "identify")]


def test_command_to_a_silent_device_times_out_with_exit_1(hub_and_fleet):
    tmp_path, database, broker = hub_and_fleet
    assert smartiot(tmp_path, "devices", "register", "cli-silent", "--type", "pump",
                    "--org", "cli", "--database", database).returncode == 0
    result = smartiot(tmp_path, "devices", "command", "cli-silent", "reboot", "--timeout", "2",
                      "--broker", broker, "--database", database)
    assert result.returncode == 1
    assert "cli-silent: reboot timeout" in result.stderr
    assert "no answer within 2 s" in result.stderr
    unknown = smartiot(tmp_path, "devices", "command", "nobody-here", "ping",
                       "--broker", broker, "--database", database)
    assert unknown.returncode == 1 and "not registered" in unknown.stderr
    bad = smartiot(tmp_path, "devices", "command", "cli-00000", "set-interval",
                   "--broker", broker, "--database", database)
    assert bad.returncode == 2 and "set-interval needs SECONDS" in bad.stderr


def test_command_on_the_embedded_broker_explains_instead_of_hanging(tmp_path):
    result = smartiot(tmp_path, "devices", "command", "cli-00000", "ping")
    assert result.returncode == 2
    assert "--broker mqtt://" in result.stderr


def test_snooze_for_a_while_and_ack_without_comment(hub_and_fleet):
    tmp_path, database, _broker = hub_and_fleet
    with Store.open(database) as store:
        first = Alert("cli-00000", "hot", "warning", "Hot: 31 °C", 31.0)
        second = Alert("cli-00001", "hot", "critical", "Hot: 45 °C", 45.0)
        store.alerts.add(first)
        store.alerts.add(second)
    snoozed = smartiot(tmp_path, "alerts", "snooze", first.alert_id[:10], "--for", "1h30m",
                       "--comment", "waiting for the spare part", "--database", database)
    assert snoozed.returncode == 0, snoozed.stderr
    assert f"{first.alert_id[:8]} snoozed until" in snoozed.stdout
    ack = smartiot(tmp_path, "alerts", "ack", second.alert_id, "--database", database)
    assert ack.returncode == 0, ack.stderr
    with Store.open(database) as store:
        alert = store.alerts.get(first.alert_id)
        assert alert.state is AlertState.ACTIVE and alert.is_snoozed()
        expected = datetime.now(UTC) + timedelta(minutes=90)
        assert abs((alert.snoozed_until - expected).total_seconds()) < 120
        assert store.alerts.get(second.alert_id).state is AlertState.ACKNOWLEDGED
        entries = [e for e in store.audit.entries() if e.subject == first.alert_id]
    assert [e.action for e in entries] == ["alert.snooze"]
    assert entries[0].details["comment"] == "waiting for the spare part"
    listed = smartiot(tmp_path, "alerts", "list", "--database", database)
    assert "(snoozed)" in listed.stdout


def test_no_display_lists_the_commands_that_exist(tmp_path):
    env = {k: v for k, v in _env(tmp_path).items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-m", "console.cli"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 3
    assert "as they arrive" not in result.stderr
    for command in ("hub", "simulate", "devices", "alerts", "firmware", "deploy", "export"):
        assert f"`smartiot {command}`" in result.stderr
    assert "xvfb-run -a smartiot" in result.stderr
