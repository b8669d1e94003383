"""The embedded broker never outlives the console: not after ``kill -9``, not
after a crash, and a broker left by an earlier run is stopped at the next start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulator import broker_guard
from simulator.broker import find_free_port, find_mosquitto

ROOT = Path(__file__).resolve().parents[3]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def _wait(condition, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def _mosquitto_children(parent: int) -> list[int]:
    """Found through /proc, not the pid files: the test must not trust the guard."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"mosquitto" in cmdline:
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def _recorded(pid_dir: Path, owner: int) -> list[dict[str, object]]:
    out = []
    for path in pid_dir.glob("broker-*.json"):
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if entry.get("owner_pid") == owner:
            out.append(entry)
    return out


@pytest.fixture
def pid_dir(tmp_path, monkeypatch):
    directory = tmp_path / "run"
    monkeypatch.setenv(broker_guard.PID_DIR_ENV, str(directory))
    return directory


def test_kill_9_of_the_console_stops_its_embedded_broker(tmp_path, pid_dir):
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed; run `make test`")
    config = tmp_path / "config.toml"
    config.write_text('[profiles.local]\ndemo_fleet = false\n')
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SMARTIOT_CONFIG": str(config),
           "SMARTIOT_DATA_DIR": str(tmp_path / "data"),
           broker_guard.PID_DIR_ENV: str(pid_dir)}
    console = subprocess.Popen([sys.executable, "-m", "console"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(lambda: bool(_mosquitto_children(console.pid)) or console.poll() is not None,
              90, "the console to start its broker")
        assert console.poll() is None, console.stderr.read().decode() if console.stderr else ""
        [broker_pid] = _mosquitto_children(console.pid)
        recorded = [e["pid"] for e in _recorded(pid_dir, console.pid)]

        console.send_signal(signal.SIGKILL)
        console.wait(timeout=30)

        _wait(lambda: not _alive(broker_pid), 30, f"broker {broker_pid} to stop")
        assert recorded == [broker_pid]  # and the pid file would have caught it too
    finally:
        if console.poll() is None:
            console.kill()
            console.wait(timeout=30)
        for pid in _mosquitto_children(1):
            if any(str(tmp_path) in a for a in _cmdline(pid)) or pid == locals().get(
                    "broker_pid"):
                os.kill(pid, signal.SIGKILL)


def test_a_broker_left_by_a_dead_console_is_stopped_at_the_next_start(tmp_path, pid_dir):
    """The pid file guard on its own (no parent-death signal): a mosquitto started
    by a program that is gone is reaped before the next broker starts."""
    binary = find_mosquitto()
    if binary is None:
        pytest.fail("mosquitto is not installed; run `make test`")
    conf = tmp_path / "stale.conf"
    conf.write_text(f"listener {find_free_port()} 127.0.0.1\nallow_anonymous true\n"
                    + ("user root\n" if os.geteuid() == 0 else ""))
    args = [binary, "-c", str(conf)]
    stale = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gone_owner = subprocess.Popen([sys.executable, "-c", "pass"])
    gone_owner.wait()
    pid_dir.mkdir(parents=True)
    (pid_dir / f"broker-{stale.pid}.json").write_text(json.dumps(
        {"pid": stale.pid, "args": args, "owner_pid": gone_owner.pid, "owner_start": "1"}))
    # a broker whose owner is alive (this test) is left alone
    mine = subprocess.Popen([*args[:1], "-p", str(find_free_port())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    broker_guard.record(mine.pid, [*args[:1], "-p", "0"])
    try:
        _wait(lambda: Path(f"/proc/{stale.pid}/cmdline").read_bytes() != b"", 10,
              "the stale broker to run")

        from simulator.broker import EmbeddedBroker

        with EmbeddedBroker(prefer="mosquitto", anonymous=True) as fresh:
            assert fresh.kind == "mosquitto"
            stale.wait(timeout=10)  # reaped by the fresh broker's start
            assert _alive(mine.pid)
            assert (pid_dir / f"broker-{mine.pid}.json").exists()
            assert not (pid_dir / f"broker-{stale.pid}.json").exists()
            fresh_pid = fresh._process.pid  # type: ignore[union-attr]
            assert (pid_dir / f"broker-{fresh_pid}.json").exists()
        assert not (pid_dir / f"broker-{fresh_pid}.json").exists()  # stop() forgets it
    finally:
        for p in (stale, mine):
            if p.poll() is None:
                p.kill()
                p.wait()
