"""The hub process under faults: its database locked for 20 s, Ctrl+C while the
database is away, and kill -9 with a backlog in memory. `smartiot hub` runs as
a subprocess on a private mosquitto, the simulator publishes QoS 1 telemetry,
and an independent witness records what the broker accepted."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.chaos.conftest import report
from tests.chaos.rig import HubProcess, Witness, fleet, sqlite_write_lock, stored_keys, wait_until

LONG_LOCK_S = 20.0


def _rates(line: str) -> tuple[float, float]:
    """(msg/s, readings/s) from a status line; (0, 0) for other lines."""
    match = re.search(r"([\d,.]+) msg/s, ([\d,.]+) readings/s", line)
    if not match:
        return 0.0, 0.0
    return float(match[1].replace(",", "")), float(match[2].replace(",", ""))


def _all_stored(witness: Witness, db: Path, timeout: float = 90.0) -> float:
    """Waits until every reading the witness saw is stored; returns how long it took."""
    started = time.monotonic()
    expected = witness.snapshot()
    wait_until(lambda: expected <= set(stored_keys(db)), timeout,
               "readings the broker accepted are missing from the store")
    stored = stored_keys(db)
    assert max(stored.values()) == 1, "a reading was stored twice"
    return time.monotonic() - started


def test_sqlite_locked_20_s_then_ctrl_c_while_locked(broker, tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    url = f"sqlite:///{db}"
    witness = Witness(broker.host, broker.port, f"lock-{time.monotonic_ns()}")
    hub = HubProcess(broker.url, url, tmp_path, "--drain-timeout", "3")
    running = None
    try:
        hub.wait_running()
        running = fleet(broker.url, 10, prefix="lck", interval_s=0.2)
        wait_until(lambda: len(stored_keys(db)) > 300, 60, "nothing stored before the fault")
        # the status line's rates are right (it printed "0 msg/s" while storing)
        wait_until(lambda: any(min(_rates(line)) > 0
                               for _, line in list(hub.lines)), 30,
                   "the status line never showed the message and reading rates")
        locked_at = time.monotonic()
        with sqlite_write_lock(db):
            wait_until(lambda: hub.saw("degraded: database unavailable for", locked_at),
                       LONG_LOCK_S, "the status line did not say the database was away")
            said_at = time.monotonic() - locked_at
            time.sleep(max(0.0, LONG_LOCK_S - (time.monotonic() - locked_at)))
            assert hub.process.poll() is None
        released = time.monotonic()
        wait_until(lambda: hub.saw("hub: recovered (database unavailable for", released), 60,
                   "the status line did not say the hub recovered")
        recovered_after = time.monotonic() - released
        # the status line printed with it (read from the hub's output by another thread)
        wait_until(lambda: hub.saw("1 database outage(s)", released), 10,
                   "the status line after the recovery did not count the outage")
        catch_up = _all_stored(witness, db)

        # Ctrl+C while the database is away: the hub cannot store its inbox,
        # says so and exits non-zero; the broker keeps the unacknowledged QoS 1.
        with sqlite_write_lock(db):
            locked_at = time.monotonic()
            wait_until(lambda: hub.saw("degraded: database unavailable", locked_at), 30,
                       "the second lock went unnoticed")
            hub.process.send_signal(2)
            code = hub.process.wait(90)
        assert code == 3, hub.text()[-2000:]
        assert hub.saw("hub stopped with problems: ended degraded: database unavailable")
        ended = next(line for _, line in hub.lines if "hub stopped with problems" in line)

        # started again, it gets what the broker kept and stores every reading once
        hub = HubProcess(broker.url, url, tmp_path)
        hub.wait_running()
        seen = witness.messages
        wait_until(lambda: witness.messages >= seen + 20, 60,
                   "the fleet published nothing while the restarted hub ran")
        running.stop()
        running = None
        time.sleep(1.0)
        _all_stored(witness, db)
        assert hub.interrupt() == 0, hub.text()[-2000:]
        report("sqlite-lock", lock_s=LONG_LOCK_S, status_said_degraded_after_s=f"{said_at:.1f}",
               recovered_after_release_s=f"{recovered_after:.1f}",
               all_stored_after_release_s=f"{recovered_after + catch_up:.1f}",
               readings=len(witness.snapshot()), lost=0, stored_twice=0,
               ctrl_c_while_locked=f"exit {code}: {ended}")
    finally:
        if running is not None:
            running.stop()
        hub.close()
        witness.close()


def test_kill_9_with_a_backlog_loses_nothing(broker, tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    url = f"sqlite:///{db}"
    witness = Witness(broker.host, broker.port, f"kill-{time.monotonic_ns()}")
    hub = HubProcess(broker.url, url, tmp_path)
    running = None
    try:
        hub.wait_running()
        running = fleet(broker.url, 10, prefix="k9", interval_s=0.2)
        wait_until(lambda: len(stored_keys(db)) > 300, 60, "nothing stored before the fault")
        # a backlog: the database is locked, so the hub holds messages in memory
        # (unacknowledged) when it is killed
        with sqlite_write_lock(db):
            locked_at = time.monotonic()
            wait_until(lambda: hub.saw("degraded: database unavailable", locked_at), 30,
                       "the hub did not notice the lock")
            wait_until(lambda: any("inbox" in line and "inbox 0," not in line
                                   for at, line in list(hub.lines) if at >= locked_at),
                       30, "no backlog built up")
            hub.kill9()
        killed_at = time.monotonic()
        session = next(line for _, line in hub.lines if "session smartiot-hub-" in line)
        hub = HubProcess(broker.url, url, tmp_path)
        hub.wait_running()
        assert session.split("session ")[1] in hub.text(), "the restarted hub took a new session"
        restarted_after = time.monotonic() - killed_at
        catch_up = _all_stored(witness, db)
        running.stop()
        running = None
        time.sleep(1.0)
        _all_stored(witness, db)
        assert hub.interrupt() == 0, hub.text()[-2000:]
        report("hub-kill-9", restarted_after_s=f"{restarted_after:.1f}",
               all_stored_after_restart_s=f"{catch_up:.1f}",
               readings=len(witness.snapshot()), lost=0, stored_twice=0)
    finally:
        if running is not None:
            running.stop()
        hub.close()
        witness.close()
