"""QA runs `smartiot simulate --scenario office --broker <the console's broker>`
while the console's demo fleet, whose office sensors have the same ids, is
online: the simulator must refuse rather than take their sessions over, and
with --id-prefix both fleets report side by side."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from core.config import load_config
from core.context import AppContext
from core.model import DeviceStatus
from core.plugins import PluginManager

DEMO_OFFICE = [f"office-{i:05d}" for i in range(15)]  # resources/scenarios/demo.toml
QA_OFFICE = [f"qa-office-{i:05d}" for i in range(20)]  # resources/scenarios/office.toml


def simulate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console.cli", "simulate", *args],
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "SMARTIOT_ENTRY_POINTS": "0"})


def wait_until(condition, timeout_s: float = 90.0, message: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {message}")


@pytest.fixture
def console(tmp_path):
    """The `make run` set-up without a window: embedded broker, hub, demo fleet."""
    config = load_config(tmp_path / "config.toml", tmp_path / "data", env={})
    assert config.profile.demo_fleet
    context = AppContext(config, PluginManager(entry_points=False, blocked=()))
    backend = context.backend
    yield backend
    context.close()


def _status(backend, device_id: str) -> DeviceStatus | None:
    device = backend.registry.get(device_id)
    return None if device is None else device.status


def _newest_ts(backend, device_id: str) -> float:
    readings = backend.telemetry.latest(device_id)
    return max((r.ts.timestamp() for r in readings.values()), default=0.0)


def test_clashing_ids_are_refused_and_a_prefix_runs_beside_the_console_fleet(console):
    backend = console
    wait_until(lambda: all(_status(backend, d) is DeviceStatus.ONLINE for d in DEMO_OFFICE),
               message="the demo fleet's office sensors online")

    refused = simulate("--scenario", "office", "--broker", backend.broker_url,
                       "--duration", "20", "--speed", "10")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "15 of this run's 20 device ids are already online" in refused.stderr
    assert "office-00000, office-00001" in refused.stderr
    assert "--id-prefix" in refused.stderr and "--take-over" in refused.stderr
    assert "simulating" not in refused.stderr  # nothing connected

    before = {d: _newest_ts(backend, d) for d in DEMO_OFFICE}
    stats = wait_until(lambda: all(backend.link_stats.get(d) for d in DEMO_OFFICE)
                       and [backend.link_stats.get(d) for d in DEMO_OFFICE],
                       message="link statistics of every demo office sensor")
    sessions = {s.device_id: s.connected_at_ms for s in stats}
    result = simulate("--scenario", "office", "--id-prefix", "qa-", "--broker",
                      backend.broker_url, "--duration", "30", "--speed", "10")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "added 20 devices to the embedded" in result.stderr
    assert "connection errors" not in result.stdout, result.stdout

    # The scenario's own devices reported and were stored...
    wait_until(lambda: all(backend.telemetry.metrics_for(d) for d in QA_OFFICE),
               message="readings of every qa-office device stored")
    # ...and the console's devices never left: still online, still reporting,
    # nothing of theirs quarantined as out of order.
    wait_until(lambda: all(_newest_ts(backend, d) > before[d] for d in DEMO_OFFICE),
               message="new readings from every demo office sensor after the run")
    assert all(_status(backend, d) is DeviceStatus.ONLINE for d in DEMO_OFFICE), {
        d: _status(backend, d) for d in DEMO_OFFICE}
    for device_id in DEMO_OFFICE:
        # the same session as before the runs: never knocked off and back
        assert backend.link_stats.get(device_id).connected_at_ms == sessions[device_id]
        assert not [m for m in backend.quarantine.list(device_id=device_id)
                    if m.reason == "out_of_order"], device_id


def test_id_prefix_with_a_replay_is_refused(tmp_path):
    recording = tmp_path / "incident.csv"
    recording.write_text("device_id,metric,ts,value\noffice-00000,temperature,1795000000,21.5\n")
    result = simulate("--replay", str(recording), "--id-prefix", "qa-", "--duration", "1")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--id-prefix works with --scenario and --devices" in result.stderr
