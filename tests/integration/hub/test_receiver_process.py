"""The hub receiving telemetry in a child process (``receiver="process"``), on a
real mosquitto with the project's simulator: every reading the broker accepted is
stored; a child killed with SIGKILL is started again, counted, and ingestion goes
on; a stopped hub leaves no child behind, nor does a hub that dies; and the same
stream is stored identically by a hub receiving on its own thread."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from contextlib import closing
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.hub import Hub
from plugins.local.hub.receiver_process import Batch, ReceiverProcess
from tests.chaos.rig import PersistentMosquitto, Witness, fleet, stored_keys
from tests.integration.hub.conftest import wait_until

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def broker():
    b = PersistentMosquitto().start()
    yield b
    b.stop()


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as ended)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            state = next(line for line in f if line.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "Z" not in state.split()[1]


def _receiver_children() -> list[int]:
    """Processes of ours running the receiver module."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == me and b"receiver_process" in cmdline and _alive(int(entry)):
            found.append(int(entry))
    return found


def _hub(broker, db: Path, mode: str, *, persistent: bool = False) -> tuple[Hub, Store]:
    store = Store.open(f"sqlite:///{db}")
    hub = Hub(store, EventBus(), broker.host, broker.port, receiver=mode,
              client_id=f"rx-hub-{uuid.uuid4().hex[:8]}" if persistent else None)
    hub.start()
    assert hub.wait_subscribed(20), "the hub did not subscribe"
    return hub, store


def _rows(db: Path) -> list[tuple]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT device_id, metric, ts, value FROM telemetry "
                            "ORDER BY device_id, metric, ts").fetchall()


def test_every_accepted_reading_is_stored_through_the_receiver_process(broker, tmp_path):
    db = tmp_path / "hub.db"
    hub, store = _hub(broker, db, "process")
    assert hub.receiver is not None and hub.receiver.pid is not None
    assert "dt/+/+/telemetry" not in hub.link.filters  # the child's alone
    witness = Witness(broker.host, broker.port, f"rx-all-{time.monotonic_ns()}")
    devices = fleet(broker.url, 40, prefix=f"rxa{uuid.uuid4().hex[:4]}", interval_s=0.1)
    try:
        wait_until(lambda: devices.stats.published >= 1500, 60, "the fleet did not publish")
    finally:
        devices.stop()
    try:
        expected = witness.snapshot()
        wait_until(lambda: expected <= set(stored_keys(db)), 60,
                   "readings the broker accepted were not stored")
        stored = stored_keys(db)
        assert max(stored.values()) == 1
        wait_until(lambda: hub.snapshot()["inbox"] == 0, 30)
        assert hub.counters.readings_written == sum(stored.values())
        assert hub.counters.shed_overload == 0
        rx = hub.snapshot()["receiver"]
        assert rx["received"] >= witness.messages and rx["dropped"] == 0
        assert rx["state"] == "connected" and rx["restarts"] == 0
    finally:
        witness.close()
        hub.stop()
        store.close()


def test_a_killed_receiver_is_restarted_and_ingestion_goes_on(broker, tmp_path):
    db = tmp_path / "hub.db"
    hub, store = _hub(broker, db, "process", persistent=True)
    assert hub.receiver is not None
    witness = Witness(broker.host, broker.port, f"rx-kill-{time.monotonic_ns()}")
    devices = fleet(broker.url, 20, prefix=f"rxk{uuid.uuid4().hex[:4]}", interval_s=0.1)
    try:
        wait_until(lambda: hub.counters.readings_written > 600, 60, "nothing stored")
        first = hub.receiver.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: hub.receiver.counters.restarts == 1, 30, "no restart counted")
        wait_until(lambda: hub.receiver.wait_subscribed(0), 30, "the new child did not subscribe")
        assert hub.receiver.pid != first and not _alive(first)
        after = hub.counters.readings_written
        wait_until(lambda: hub.counters.readings_written > after + 600, 60,
                   "ingestion did not go on after the restart")
    finally:
        devices.stop()
    try:
        # QoS 1 into a persistent session: what the dead child had not acknowledged
        # came again to the next one; every reading the broker accepted is stored once
        expected = witness.snapshot()
        wait_until(lambda: expected <= set(stored_keys(db)), 60,
                   "readings the broker accepted were lost with the killed receiver")
        assert max(stored_keys(db).values()) == 1
        assert hub.counters.stage_failures == 0
        assert hub.snapshot()["receiver"]["restarts"] == 1
    finally:
        witness.close()
        hub.stop()
        store.close()


def test_a_stopped_hub_leaves_no_receiver_process(broker, tmp_path):
    hub, store = _hub(broker, tmp_path / "hub.db", "process")
    pid = hub.receiver.pid if hub.receiver is not None else None
    assert pid is not None and pid in _receiver_children()
    hub.stop()
    store.close()
    assert not _alive(pid)
    assert _receiver_children() == []


def test_the_receiver_ends_when_its_parent_dies(broker):
    """However the hub ends (here SIGKILL), its child does not outlive it."""
    script = (
        "import sys, time\n"
        "from plugins.local.hub.receiver_process import ReceiverProcess\n"
        f"rx = ReceiverProcess({broker.host!r}, {broker.port}, client_id='orphan-test',\n"
        "    filters=['dt/+/+/telemetry'], on_batch=lambda b: None)\n"
        "rx.start(); assert rx.wait_subscribed(20)\n"
        "print(rx.pid, flush=True); time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        child = int(line)
        assert _alive(child)
    finally:
        parent.kill()
        parent.wait(10)
    wait_until(lambda: not _alive(child), 15, "the receiver outlived its parent")


def test_the_receiver_drops_qos0_beyond_its_buffer_and_skips_stale_tokens(broker):
    """A parent that does not take batches: QoS 0 beyond the child's buffer is
    dropped and counted, never held without bound; tokens of another source
    (the link's, positive generations) or of a dead child are not sent down."""
    gate = threading.Event()
    got: list[Batch] = []

    def slow(batch: Batch) -> None:
        gate.wait(60)
        got.append(batch)

    rx = ReceiverProcess(broker.host, broker.port, client_id=f"rx-drop-{uuid.uuid4().hex[:6]}",
                         filters=["rxdrop/#"], on_batch=slow, buffer_limit=200, batch_max=50,
                         manual_ack=True)
    rx.start()
    try:
        assert rx.wait_subscribed(20)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.connect(broker.host, broker.port)
        client.loop_start()
        payload = b"x" * 60_000  # fills the pipe quickly, so the child's buffer fills
        for i in range(600):
            client.publish(f"rxdrop/{i}", payload, qos=0).wait_for_publish(5)
        time.sleep(1.0)  # the child takes them off its socket while the parent does not read
        gate.set()  # counters travel with the batches: they arrive once the parent reads
        # each message either handed over or dropped and counted, none twice
        wait_until(lambda: rx.counters.received + rx.counters.dropped == 600, 30,
                   f"messages unaccounted for: {rx.counters}")
        assert rx.counters.dropped > 0
        assert rx.counters.received == sum(len(b.items) for b in got) >= 200
        client.loop_stop()
        client.disconnect()
        assert rx.ack([(3, 7), (-(99 * 1_000_000 + 1), 5)]) == 0
        assert all(mid == 0 for batch in got for *_, mid in batch.items)  # QoS 0: no token
    finally:
        gate.set()
        rx.stop()


def test_the_same_stream_is_stored_identically_in_thread_and_process_modes(broker, tmp_path):
    """Two hubs on one broker, one receiving on its own thread and one through a
    child process, take the same simulated QoS 1 stream at the same time: the
    same rows, per-device counts of stored and lost messages, and quarantine."""
    threaded, threaded_store = _hub(broker, tmp_path / "thread.db", "thread")
    process, process_store = _hub(broker, tmp_path / "process.db", "process")
    witness = Witness(broker.host, broker.port, f"rx-diff-{time.monotonic_ns()}")
    devices = fleet(broker.url, 30, prefix=f"rxd{uuid.uuid4().hex[:4]}", interval_s=0.1)
    try:
        wait_until(lambda: devices.stats.published >= 1200, 60, "the fleet did not publish")
    finally:
        devices.stop()
    try:
        expected = witness.snapshot()
        for db in (tmp_path / "thread.db", tmp_path / "process.db"):
            wait_until(lambda db=db: expected <= set(stored_keys(db)), 60,
                       f"{db.name}: readings the broker accepted were not stored")
        for hub in (threaded, process):
            wait_until(lambda hub=hub: hub.snapshot()["inbox"] == 0, 30)
        assert threaded.receiver is None and process.receiver is not None
        assert _rows(tmp_path / "thread.db") == _rows(tmp_path / "process.db")

        # What each hub stored, lost and saw last. Not ``out_of_order``: it counts
        # the messages the broker handed that hub after a later one, and mosquitto
        # reorders QoS 1 deliveries to whichever subscriber is slower at the time
        # (two CI runs differed there under load); the loss those gaps counted is
        # given back when the late message comes, so ``lost`` agrees regardless.
        def stats(store: Store) -> list[tuple]:
            return sorted((s.device_id, s.received, s.lost, s.last_seq)
                          for s in store.link_stats.list())

        try:
            wait_until(lambda: stats(threaded_store) == stats(process_store), 30)
        except AssertionError:
            thread_stats, process_stats = stats(threaded_store), stats(process_store)
            raise AssertionError(
                "link statistics differ between the modes (device, received, lost, "
                "last seq): thread "
                f"{sorted(set(thread_stats) - set(process_stats))}, process "
                f"{sorted(set(process_stats) - set(thread_stats))}") from None
        assert threaded.counters.quarantined == process.counters.quarantined
        assert threaded.counters.readings_written == process.counters.readings_written
    finally:
        witness.close()
        for hub, store in ((threaded, threaded_store), (process, process_store)):
            hub.stop()
            store.close()
