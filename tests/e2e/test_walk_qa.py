"""QA's walk: a headless `smartiot simulate` run, as CI runs it, beside an open console.

A scenario file of QA's own (five sensors, every one rebooted twice) runs with
``--id-prefix qa-`` and ``--qos 1`` on the console's embedded broker. The person
then finds the run's devices in the window and checks what the hub stored: every
reading the simulator says it sent is stored, each reboot is counted and nothing
after a reboot (its seq starts over) is lost, duplicated or quarantined.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from pytestqt.exceptions import TimeoutError

from core.model import DeviceStatus
from tests.e2e.test_first_hour import fleet_cell, search
from tests.e2e.walk import Console, console_fixture  # noqa: F401 - the console fixture

pytestmark = [pytest.mark.e2e, pytest.mark.gui]

WAIT = 30_000
SCENARIO = """\
name = "qa-reboots"
description = "five sensors, each rebooted twice"
seed = 11

[[groups]]
name = "lab"
model = "environmental"
count = 5
org = "demo"
firmware = "1.0.0"
interval_s = 1
id_prefix = "lab"

[[faults]]
kind = "reboot"
group = "lab"
fraction = 1.0
start_s = 8

[[faults]]
kind = "reboot"
group = "lab"
fraction = 1.0
start_s = 16
"""
DEVICES = [f"qa-lab-{i:05d}" for i in range(5)]


def test_qa_runs_a_headless_fleet_with_reboots_and_nothing_is_lost(
        console: Console, qtbot: Any) -> None:
    window, backend = console.window, console.backend
    qtbot.waitUntil(lambda: backend.registry.get("office-00000") is not None, timeout=60_000)
    scenario = console.tmp / "qa-reboots.toml"
    scenario.write_text(SCENARIO)
    run = subprocess.run(
        [sys.executable, "-m", "console.cli", "simulate", "--scenario", str(scenario),
         "--broker", backend.broker_url, "--id-prefix", "qa-", "--qos", "1",
         "--duration", "25"],
        capture_output=True, text=True, env=console.env, timeout=180)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    summary = re.search(r"^environmental\s+5\s+([\d,]+)\s+([\d,]+)", run.stdout, re.M)
    assert summary, run.stdout[-2000:]
    sent, dropped = (int(g.replace(",", "")) for g in summary.groups())
    # "dropped": what the sensors measured while rebooting (no link); never sent,
    # so it is not the hub's loss. Everything sent must arrive.
    assert sent >= 5 * 15 and dropped <= 5 * 2 * 5, run.stdout[-1200:]

    # Every reading sent is stored: the hub received them all, counted both reboots.
    def all_in() -> bool:
        stats = [backend.link_stats.get(d) for d in DEVICES]
        return all(stats) and sum(s.received for s in stats) == sent

    try:
        qtbot.waitUntil(all_in, timeout=WAIT)
    except TimeoutError:
        got = {d: backend.link_stats.get(d) for d in DEVICES}
        raise AssertionError(f"sent {sent}, hub received "
                             f"{ {d: s.received if s else None for d, s in got.items()} }"
                             ) from None
    for device_id in DEVICES:
        link = backend.link_stats.get(device_id)
        assert link.reboots == 2, (device_id, link)
        assert (link.lost, link.duplicates, link.out_of_order) == (0, 0, 0), (device_id, link)
        assert backend.quarantine.list(device_id=device_id) == [], device_id

    # The window lists the run's five devices with their firmware; the run ended
    # cleanly, so they are offline now (not "online" forever).
    devices = window.show_page("devices")
    search(qtbot, devices, "qa-lab")
    qtbot.waitUntil(lambda: devices.proxy.rowCount() == 5, timeout=WAIT)
    assert all(fleet_cell(devices, d, "Firmware") == "1.0.0" for d in DEVICES)
    qtbot.waitUntil(lambda: all(backend.registry.get(d).status is DeviceStatus.OFFLINE
                                for d in DEVICES), timeout=WAIT)
    console.shot("qa-1-run-devices")
    devices.search.clear()
