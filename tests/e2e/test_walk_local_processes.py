"""QA's walk on the local product as processes: the console started the way
`make run` starts it (``python -m console.cli``, offscreen), killed and closed the
ways people close it, and what it leaves behind.

* A fleet of sensors at QoS 1 streams into a console on the team's broker; each
  sensor reboots twice (its seq starts over). The console is killed with SIGKILL
  mid-stream and started again while the fleet keeps sending. Every reading the
  simulator says it sent is stored exactly once, the reboots are counted and no
  seq gap is booked as lost: the hub's persistent session and its manual
  acknowledgement mean a reading is acknowledged to the broker only once stored.
* The console's children (the hub's receiver process; with ``hub_process`` the
  hub child and its own receiver) end when the console is killed and when it
  is closed: nothing is left running.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 90.0
SCENARIO = """\
name = "k9-reboots"
description = "ten sensors at 2 Hz, each rebooted twice"
seed = 7

[[groups]]
name = "lab"
model = "environmental"
count = 10
org = "demo"
firmware = "1.0.0"
interval_s = 0.5
id_prefix = "lab"

[[faults]]
kind = "reboot"
group = "lab"
fraction = 1.0
start_s = 6

[[faults]]
kind = "reboot"
group = "lab"
fraction = 1.0
start_s = 22
"""


def wait_for(what: str, done: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    """Poll until ``done()`` is truthy (no timing is asserted, only an upper bound
    after which the test says what it was waiting for)."""
    end = time.monotonic() + timeout_s
    while True:
        got = done()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def _ppids() -> dict[int, int]:
    """Every live (not zombie) process and its parent, from /proc."""
    out: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            out[int(entry)] = int(fields[1])
    return out


def descendants(pid: int) -> dict[int, str]:
    """The processes below ``pid`` with their command lines."""
    ppids, found, todo = _ppids(), {}, [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in ppids.items():
            if ppid == parent and child not in found:
                try:
                    found[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(
                        b"\0", b" ").decode(errors="replace").strip()
                except OSError:
                    continue
                todo.append(child)
    return found


def alive(pids: dict[int, str]) -> dict[int, str]:
    live = _ppids()
    return {p: cmd for p, cmd in pids.items() if p in live}


class Console:
    """One `smartiot` process on a config and data directory of the test's."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "console.cli", "-v"],
                                            cwd=ROOT, env=env, stdout=out, stderr=out)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self, *needles: str) -> dict[int, str]:
        """Wait until a descendant's command line holds each needle; all descendants."""
        def found() -> dict[int, str] | None:
            assert self.process.poll() is None, self.text()[-3000:]
            below = descendants(self.process.pid)
            if all(any(n in cmd for cmd in below.values()) for n in needles):
                return below
            return None
        below: dict[int, str] = wait_for(f"children {needles} of the console", found)
        return below

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


@pytest.fixture(name="home")
def home_fixture(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SMARTIOT_CODESIGN_PASSPHRASE", "SMARTIOT_SECRETS_PASSPHRASE",
                        "SMARTIOT_SECRETS_BACKEND", "SMARTIOT_PROFILE", "SMARTIOT_USER")}
    env.update(QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
               SMARTIOT_CONFIG=str(tmp_path / "config" / "config.toml"),
               SMARTIOT_DATA_DIR=str(tmp_path / "data"))
    (tmp_path / "config").mkdir()
    yield tmp_path, env


def _stored(db: Path, prefix: str) -> int:
    """Readings stored for the run's devices, as (device, timestamp) pairs."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute(
                "SELECT count(*) FROM (SELECT DISTINCT device_id, ts FROM telemetry"
                " WHERE device_id LIKE ?)", (f"{prefix}%",)).fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def _accounts(db: Path, prefix: str) -> dict[str, tuple[int, ...]]:
    """For a failure: per device, the messages stored, its lowest and highest
    stored reading time, and the hub's (received, lost, hub_lost, duplicates,
    out of order, last seq)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        stored = {d: (n, lo, hi) for d, n, lo, hi in conn.execute(
            "SELECT device_id, count(DISTINCT ts), min(ts), max(ts) FROM telemetry"
            " WHERE device_id LIKE ? GROUP BY device_id", (f"{prefix}%",))}
        stats = {row[0]: row[1:] for row in conn.execute(
            "SELECT device_id, received, lost, hub_lost, duplicates, out_of_order, last_seq"
            " FROM link_stats WHERE device_id LIKE ?", (f"{prefix}%",))}
    return {d: (*stored.get(d, (0, 0, 0)), *stats.get(d, ())) for d in sorted(stored | stats)}


def test_kill_9_mid_stream_with_reboots_loses_no_accepted_reading(
        home: tuple[Path, dict[str, str]], mosquitto_broker: Any) -> None:
    tmp, env = home
    (tmp / "config" / "config.toml").write_text(
        'profile = "k9"\n[profiles.k9]\n'
        f'broker = "{mosquitto_broker.url}"\ndemo_fleet = false\nhub_receiver = "process"\n')
    db = tmp / "data" / "smartiot.db"
    first = Console(env, tmp / "console-1.log")
    scenario = tmp / "k9.toml"
    scenario.write_text(SCENARIO)
    sim: subprocess.Popen[str] | None = None
    second: Console | None = None
    try:
        # The hub's receiver child subscribes before the fleet starts: a reading
        # published before that has no session to wait in and was never accepted.
        # A probe device's reading that is stored says the subscription stands.
        children = first.children("plugins.local.hub.receiver_process")

        def probe_stored() -> bool:
            subprocess.run(
                [sys.executable, "-m", "console.cli", "simulate", "--devices", "1",
                 "--broker", mosquitto_broker.url, "--anonymous", "--id-prefix", "probe-",
                 "--qos", "1", "--duration", "2"],
                cwd=ROOT, env=env, capture_output=True, timeout=120, check=True)
            return _stored(db, "probe-") > 0
        wait_for("the hub to store a probe's reading", probe_stored)
        sim = subprocess.Popen(
            [sys.executable, "-m", "console.cli", "simulate", "--scenario", str(scenario),
             "--broker", mosquitto_broker.url, "--anonymous", "--id-prefix", "k9-",
             "--qos", "1", "--duration", "40"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        # mid-stream: some readings stored, and the first reboot behind us
        wait_for("readings before the kill", lambda: _stored(db, "k9-") >= 10 * 2 * 8)
        before = _stored(db, "k9-")
        first.kill()
        wait_for(f"the killed console's children to end: {alive(children)}",
                 lambda: not alive(children), timeout_s=30)
        assert _stored(db, "k9-") >= before  # what was committed is still there

        second = Console(env, tmp / "console-2.log")
        output, _ = sim.communicate(timeout=180)
        assert sim.returncode == 0, output[-3000:]
        summary = re.search(r"^environmental\s+10\s+([\d,]+)\s+([\d,]+)", output, re.M)
        assert summary, output[-3000:]
        sent = int(summary.group(1).replace(",", ""))
        assert sent >= 10 * 2 * 30, output[-2000:]

        # everything sent is stored once, across the kill and both reboots
        try:
            wait_for("every sent reading stored", lambda: _stored(db, "k9-") >= sent)
        except AssertionError:
            raise AssertionError(f"sent {sent}, stored {_stored(db, 'k9-')}\n"
                                 f"{second.text()[-3000:]}") from None
        assert _stored(db, "k9-") == sent
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute(
                "SELECT device_id, reboots, lost, hub_lost FROM link_stats"
                " WHERE device_id LIKE 'k9-%' ORDER BY device_id").fetchall()
            quarantined = conn.execute(
                "SELECT count(*) FROM quarantine WHERE device_id LIKE 'k9-%'").fetchone()[0]
        assert len(rows) == 10, rows
        assert all(r[1] == 2 for r in rows), rows  # both reboots seen, none invented
        assert all(r[2] == 0 and r[3] == 0 for r in rows), rows  # no gap booked as lost
        assert quarantined == 0
        for console in (first, second):
            assert "Traceback" not in console.text(), console.text()[-4000:]
    finally:
        if sim is not None and sim.poll() is None:
            sim.kill()
            sim.wait(timeout=30)
        first.stop()
        if second is not None:
            second.stop()


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT", "SIGTERM"])
def test_a_console_with_the_hub_in_its_own_process_leaves_nothing_running(
        home: tuple[Path, dict[str, str]], how: str) -> None:
    """`hub_process = true` on the embedded broker: the console's children are
    the broker, the hub child (which has a receiver child of its own) and the
    live feed's receiver; all of them end with the console, however it ends."""
    tmp, env = home
    (tmp / "config" / "config.toml").write_text(
        'profile = "solo"\n[profiles.solo]\nhub_process = true\ndemo_fleet = false\n')
    console = Console(env, tmp / "console.log")
    try:
        children = console.children("plugins.local.hub_process", "mosquitto")
        # the hub child's own receiver comes up a moment after the child
        wait_for("the hub child's receiver", lambda: any(
            "receiver_process" in cmd for cmd in descendants(console.process.pid).values()))
        wait_for("the hub to run", lambda: "hub running:" in console.text())
        children = descendants(console.process.pid)
        if how == "SIGKILL":
            console.kill()
        else:
            # Ctrl+C in the terminal, or a logout / `kill`: both close the window
            console.process.send_signal(getattr(signal, how))
            assert console.process.wait(timeout=60) == 0, console.text()[-3000:]
        wait_for(f"the console's children to end after {how}: {alive(children)}",
                 lambda: not alive(children), timeout_s=45)
        if how != "SIGKILL":
            assert "Traceback" not in console.text(), console.text()[-4000:]
    finally:
        console.stop()


def test_qa_grows_a_fleet_beside_the_console_and_its_hub_moves_out_losing_nothing(
        home: tuple[Path, dict[str, str]]) -> None:
    """QA's walk: the console as `make run` starts it (embedded broker, the demo
    fleet), then from another shell `smartiot simulate --broker console` adds
    devices until the fleet passes ``hub_process_above`` (50 here, through its
    environment variable). The console moves its hub into a child process
    mid-stream; every reading the simulator sent is stored once and no seq gap
    is booked as lost; the readings carry the time they were sent (the devices
    take 6 s to connect); closing the console ends every child."""
    tmp, env = home
    run_dir = tmp / "run"
    run_dir.mkdir(mode=0o700)
    env = env | {"XDG_RUNTIME_DIR": str(run_dir), "SMARTIOT_HUB_PROCESS_ABOVE": "50"}
    db = tmp / "data" / "smartiot.db"
    console = Console(env, tmp / "console.log")
    try:
        wait_for("the demo fleet's readings", lambda: _stored(db, "") > 40)
        assert not any("plugins.local.hub_process" in cmd
                       for cmd in descendants(console.process.pid).values())
        sim = subprocess.run(
            [sys.executable, "-m", "console.cli", "simulate", "--devices", "30",
             "--type", "environmental", "--id-prefix", "qa-", "--broker", "console",
             "--qos", "1", "--duration", "25", "--connect-rate", "5"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        ended = time.time()
        assert sim.returncode == 0, sim.stderr[-3000:]
        summary = re.search(r"^environmental\s+30\s+([\d,]+)", sim.stdout, re.M)
        assert summary, sim.stdout[-3000:]
        sent = int(summary.group(1).replace(",", ""))
        assert sent >= 30 * 20, sim.stderr[-2000:]

        # the hub moved out while the simulator ran, and the console follows it
        assert "moves out of the console's process" in console.text(), console.text()[-3000:]
        children = console.children("plugins.local.hub_process", "mosquitto")
        try:
            wait_for("every sent reading stored", lambda: _stored(db, "qa-") >= sent)
        except AssertionError:
            raise AssertionError(f"sent {sent}, stored {_stored(db, 'qa-')}; per device "
                                 f"{_accounts(db, 'qa-')}\n{sim.stdout[-1500:]}\n"
                                 f"{console.text()[-3000:]}") from None
        assert _stored(db, "qa-") == sent
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            lost = conn.execute("SELECT device_id, lost, hub_lost FROM link_stats"
                                " WHERE device_id LIKE 'qa-%' AND (lost > 0 OR hub_lost > 0)"
                                ).fetchall()
        assert lost == []
        # the readings carry the time they were sent: the fleet's clock started
        # once its devices were connected (6 s at 5 a second), not before
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            newest = conn.execute("SELECT max(ts) FROM telemetry_message"
                                  " WHERE device_id LIKE 'qa-%'").fetchone()[0] / 1000
        assert ended - newest < 4.0, ended - newest

        console.process.send_signal(signal.SIGINT)  # Ctrl+C in the terminal
        assert console.process.wait(timeout=60) == 0, console.text()[-3000:]
        wait_for(f"the console's children to end: {alive(children)}",
                 lambda: not alive(children), timeout_s=45)
        assert "Traceback" not in console.text(), console.text()[-4000:]
    finally:
        console.stop()
