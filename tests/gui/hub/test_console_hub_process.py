"""The console with its hub in a child process (``hub_process = true``): the real
window on the local profile, a private mosquitto, SQLite shared by the console
and its `smartiot hub` child, and the simulator. The window must work as with
the hub in its own process: live devices, a device's detail with every metric,
commands, an alert raised by the hub, acknowledged here and resolved by the hub."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.context import AppContext
from core.model import AlertRule, AlertState, RuleScope, Severity
from core.plugins import PluginManager
from simulator.api import RunningFleet
from simulator.faults import FaultPlan, FaultSpec
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[3]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie child of this process counts as gone (it has exited)
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except OSError:
            return True
        return state == "Z"


@pytest.fixture
def process_window(config, make_window, qtbot):
    profile = dataclasses.replace(config.profile, broker="embedded", demo_fleet=False,
                                  hub_process=True)
    config = dataclasses.replace(config, profiles={**config.profiles, "local": profile})
    context = AppContext(config, PluginManager(entry_points=False, blocked=()))
    backend = context.backend
    backend.rules.add(AlertRule(
        "Impossible temperature", "threshold",
        {"metric": "temperature", "op": "below", "limit": -273.15},
        Severity.CRITICAL, RuleScope(device_types=frozenset({"environmental"})),
        rule_id="impossible-temperature"))
    faults = [FaultSpec("out_of_range", {"p": 1.0, "metrics": ["temperature"]}, start_s=6,
                        duration_s=12, group="env", devices=[0])]
    fleet = RunningFleet(Scenario("proc", (DeviceGroup(
        "env", "environmental", 4, org="site", interval_s=1.0, id_prefix="proc"),),
        FaultPlan(faults)), on_broker=backend.broker,
        client_id_prefix=f"proc-{id(context)}-").start()
    window = make_window(context, show=True)
    yield window, backend, context
    fleet.stop()
    window.close()
    context.close()


def test_console_works_beside_its_hub_process(process_window, qtbot):
    window, backend, context = process_window
    assert backend.hub is None, "the hub must not run in the console's process"
    assert backend.hub_process.alive() and backend.receiver is not None
    hub_pid, receiver_pid = backend.hub_process.pid, backend.receiver.pid
    assert hub_pid != os.getpid() and receiver_pid not in (None, os.getpid())

    # Devices: the hub child registers the fleet, the table lists it and its
    # battery and last-seen move with the telemetry the receiver child decodes
    window.show_page("devices")
    devices = window.page_widget("devices")
    qtbot.waitUntil(lambda: devices.model.rowCount() == 4, timeout=30_000)
    qtbot.waitUntil(lambda: backend.receiver.messages > 0, timeout=20_000)

    def row(device_id):
        return devices.model._rows[devices.model.row_of(device_id)]

    qtbot.waitUntil(lambda: row("proc-00001").battery is not None
                    and row("proc-00001").last_seen_s is not None, timeout=20_000)
    seen = row("proc-00001").last_seen_s
    qtbot.waitUntil(lambda: row("proc-00001").last_seen_s > seen, timeout=20_000)

    # Detail: the device shown gets every metric live (it is focused), others
    # only what the table shows
    assert devices.show_device("proc-00002")
    detail = devices.detail
    qtbot.waitUntil(lambda: detail.loaded_device_id == "proc-00002", timeout=20_000)
    assert backend.bus.focused == frozenset({"proc-00002"})
    got: list = []
    backend.bus.subscribe(got.extend)
    qtbot.waitUntil(lambda: any(e.device_id == "proc-00002" for e in got
                                if type(e).__name__ == "TelemetryReceived"), timeout=20_000)
    telemetry = [e for e in got if type(e).__name__ == "TelemetryReceived"]
    shown = {r.metric for e in telemetry if e.device_id == "proc-00002" for r in e.readings}
    assert "temperature" in shown
    assert {e.device_id for e in telemetry} == {"proc-00002"}
    # the others come as the table's columns (time, battery, RSSI, firmware)
    qtbot.waitUntil(lambda: any(type(e).__name__ == "TableSamples" for e in got),
                    timeout=20_000)
    columns = [e for e in got if type(e).__name__ == "TableSamples"]
    others = {row.device.device_id for row in devices.model.rows()} - {"proc-00002"}
    assert {d for e in columns for d in e.device_ids} <= others

    # Commands: through the broker to the simulated device and back
    detail.tabs.setCurrentIndex(2)
    detail.commands.ping_button.click()
    qtbot.waitUntil(lambda: "ping: ok" in detail.commands.command_status.text(),
                    timeout=20_000)

    # Alerts: raised by the hub process, acknowledged here, stored, and
    # resolved by the hub once the fault is over
    alert = None

    def raised():
        nonlocal alert
        alert = next(iter(backend.alerts.list()), None)
        return alert is not None

    qtbot.waitUntil(raised, timeout=40_000)
    window.show_page("alerts")
    alerts = window.page_widget("alerts")
    qtbot.waitUntil(lambda: alerts.model.row_of(alert.alert_id) is not None, timeout=20_000)
    alerts.select_alerts([alert.alert_id])
    alerts.ack_button.click()
    dialog = alerts.comment_dialog
    dialog.comment.setPlainText("checked beside the hub process")
    with qtbot.waitSignal(alerts.actions_done, timeout=15_000) as done:
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert [r.ok for r in done.args[0]] == [True]
    assert backend.alerts.get(alert.alert_id).ack_comment == "checked beside the hub process"
    qtbot.waitUntil(lambda: backend.alerts.get(alert.alert_id).state is AlertState.RESOLVED,
                    timeout=60_000)
    resolved = backend.alerts.get(alert.alert_id)
    assert resolved.resolved_by == "system"
    assert resolved.ack_comment == "checked beside the hub process"

    # The hub child and the receiver child stop with the console
    context.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (_gone(hub_pid) and _gone(receiver_pid)):
        time.sleep(0.2)
    assert _gone(hub_pid) and _gone(receiver_pid)


KILLED_CONSOLE = r"""
import dataclasses, json, sys, time
from pathlib import Path
from core.config import load_config
from core.context import AppContext
from core.plugins import PluginManager
work = Path(sys.argv[1])
config = load_config(work / "config.toml", work / "data", env={})
profile = dataclasses.replace(config.profile, broker="embedded", demo_fleet=False,
                              hub_process=True)
config = dataclasses.replace(config, profiles={**config.profiles, "local": profile})
backend = AppContext(config, PluginManager(entry_points=False, blocked=())).backend
print(json.dumps({"hub": backend.hub_process.pid, "receiver": backend.receiver.pid,
                  "broker": backend.broker._process.pid if backend.broker._process else 0}),
      flush=True)
time.sleep(600)
"""


def test_hub_process_ends_when_the_console_is_killed(tmp_path):
    console = subprocess.Popen([sys.executable, "-c", KILLED_CONSOLE, str(tmp_path)],
                               stdout=subprocess.PIPE, cwd=ROOT, text=True,
                               env=os.environ | {"PYTHONPATH": str(ROOT)})
    pids = {}
    try:
        line = console.stdout.readline()
        assert line, "the console did not start its backend"
        pids = json.loads(line)
        assert not _gone(pids["hub"]) and not _gone(pids["receiver"])
        console.send_signal(signal.SIGKILL)  # no close(): the console just dies
        console.wait(30)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (_gone(pids["hub"])
                                                   and _gone(pids["receiver"])):
            time.sleep(0.2)
        assert _gone(pids["hub"]), "the hub process outlived its console"
        assert _gone(pids["receiver"]), "the receiver process outlived its console"
    finally:
        if console.poll() is None:
            console.kill()
        for pid in pids.values():
            if pid and not _gone(pid):
                os.kill(pid, signal.SIGKILL)
