"""Hub ingest against a bare paho subscriber, both fed by the real simulator in one run.

Not a test (not part of ``make test``); see bench/README.md.

    .venv/bin/python bench/hub_bench.py                                # 1k x 10 Hz, 60 s
    .venv/bin/python bench/hub_bench.py --devices 10000 --interval 1   # 10k x 1 Hz
    .venv/bin/python bench/hub_bench.py --quick                        # smoke run, ~30 s
    .venv/bin/python bench/hub_bench.py --receiver thread,process      # both, back to back
    .venv/bin/python bench/hub_bench.py --devices 10000 --interval 1 --warmup 20  # steady state

One private mosquitto on a free port; four processes: the simulator (``FleetRuntime``,
one MQTT session per device, 6 metrics a message, readings dated now), a bare paho
subscriber that only ``json.loads`` every telemetry payload (the baseline), the hub
(``Hub`` as ``smartiot hub`` builds it: SQLite store, alert engine with the default
rules, nobody on its event bus, as consoles follow a ``smartiot hub`` through the broker;
``--console`` adds a subscriber standing in for a console whose own hub it is) and this
parent, which only waits. The baseline and the hub take the same stream at the same
time, so their ratio does not depend on what else the shared box is running.

Reported: messages/s of each over the stream (the first and last seconds cut), the
hub's stored messages/s (rows written / 6) and its ratio to the baseline, the hub's
inbox depth over time (the backlog), how long it needed after the stream to catch
up, what it shed, and the rows counted in the database against the readings
accepted. ``--receiver`` picks where the hub receives telemetry (``process``: a child
process, the default of ``smartiot hub``; ``thread``: paho's thread in the hub's
process); the hub's CPU then includes its receiver child's. ``--warmup S`` streams
S seconds more and leaves them out of the window (the same sessions: every device
connected, registered and its shadow and jobs asked for before the window): a
steady state rather than a cold start. The window's CPU per stored message comes
from the hub's samples (its process and its receiver child), the run's as before.
The ``decode`` phase times the hub's decode-and-validate stage (topic
parse + ``decode_telemetry``) against ``json.loads`` on the same payloads.
Results: a table on stdout and JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import logging
import multiprocessing as mp
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TELEMETRY_FILTER = "dt/+/+/telemetry"
METRICS_PER_MESSAGE = 6  # the environmental model
COUNTERS_SETTLE_S = 1.2  # the hub's receiver child reports its counters every second
SAMPLE_EVERY_S = 0.5


def _load() -> tuple[float, float, float]:
    return os.getloadavg()


# ------------------------------------------------------------------ decode stage
def _payloads(devices: int, ticks: int) -> list[tuple[str, bytes]]:
    from core.protocol.topics import telemetry_topic
    from simulator.scenario import single_group

    start = float(int(time.time()))
    fleet = single_group(devices, "environmental", interval_s=1.0).build_fleet(
        seed=1, start_s=start)
    out: list[tuple[str, bytes]] = []
    for step in range(1, ticks + 1):
        for _, m in fleet.tick(start + step):
            out.append((telemetry_topic("demo", m.device_id), m.encode()))
    return out


def phase_decode(devices: int = 2000, ticks: int = 5, repeat: int = 7) -> dict[str, Any]:
    """The hub's decode-and-validate stage (its topic parse and ``decode_telemetry``,
    as ``Ingestor`` runs them) against the bare subscriber's ``json.loads``, per
    message, on the simulator's own payloads; best of ``repeat``, interleaved."""
    from core.ingest.ingestor import Ingestor
    from core.ingest.registry_cache import RegistryCache
    from core.protocol.payloads import decode_telemetry
    from core.protocol.topics import parse_device_topic

    messages = _payloads(devices, ticks)
    ingestor = Ingestor(RegistryCache(None))  # type: ignore[arg-type]
    # (before the topic cache the ingestor parsed every topic: the bench runs on both)
    parse_topic = getattr(ingestor, "parse_topic", parse_device_topic)
    now_ms = int(time.time() * 1000) + 10_000

    def bare() -> None:
        loads = json.loads
        for _topic, payload in messages:
            loads(payload)

    def hub_stage() -> None:
        for topic, payload in messages:
            parsed = parse_topic(topic)
            assert parsed is not None
            decode_telemetry(payload, topic_device_id=parsed.device_id, now_ms=now_ms)

    fns = {"bare_json_loads": bare, "hub_decode_validate": hub_stage}
    try:
        import orjson

        def bare_orjson() -> None:
            loads = orjson.loads
            for _topic, payload in messages:
                loads(payload)

        fns["bare_orjson_loads"] = bare_orjson
    except ImportError:
        pass
    best = dict.fromkeys(fns, float("inf"))
    gc.disable()
    try:
        for _ in range(repeat):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t0)
            gc.collect()
    finally:
        gc.enable()
    n = len(messages)
    out: dict[str, Any] = {"messages": n, "payload_bytes": len(messages[0][1])}
    for name, seconds in best.items():
        out[f"{name}_us"] = seconds / n * 1e6
        out[f"{name}_msg_per_s"] = n / seconds
    out["ratio_vs_json_loads"] = best["bare_json_loads"] / best["hub_decode_validate"]
    if "bare_orjson_loads" in best:
        out["ratio_vs_orjson_loads"] = best["bare_orjson_loads"] / best["hub_decode_validate"]
    return out


# ------------------------------------------------------------------ child processes
def _bare_child(conn: Connection, host: str, port: int) -> None:
    """The baseline: paho, one subscription, ``json.loads`` per message, a count per
    wall-clock second. Nothing else."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    buckets: Counter[int] = Counter()
    loads = json.loads
    subscribed = threading.Event()
    count = [0]

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        loads(message.payload)
        count[0] += 1
        buckets[int(time.time())] += 1

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-bare-{os.getpid()}",
                         protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_connect = lambda c, *a: c.subscribe(TELEMETRY_FILTER, qos=0)
    client.connect(host, port, keepalive=30)
    client.loop_start()
    subscribed.wait(15)
    cpu0 = time.process_time()
    conn.send({"ready": subscribed.is_set()})
    conn.recv()  # stop
    cpu = time.process_time() - cpu0
    client.disconnect()
    client.loop_stop()
    conn.send({"received": count[0], "per_second": dict(buckets), "cpu_s": cpu})
    conn.close()


def _hub_child(conn: Connection, host: str, port: int, db_url: str,
               receiver: str = "process", console: bool = False) -> None:
    """The hub as ``smartiot hub`` runs it (store, alert engine with the default
    rules; with ``console``, live events to one subscriber, as a console's own
    hub has), sampled every SAMPLE_EVERY_S."""
    logging.basicConfig(level=logging.WARNING)
    from core.services.alerting.builtin import BUILTIN_RULE_TYPES
    from core.services.event_bus import EventBus
    from core.store import Store
    from plugins.local.alerting import HubAlerting, seed_default_rules
    from plugins.local.hub.hub import Hub

    store = Store.open(db_url)
    seed_default_rules(store)
    gc_time = [0.0, 0.0, 0.0]  # seconds in the collector, per generation
    gc_started: list[float] = [0.0]

    def gc_timer(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_time[info["generation"]] += time.perf_counter() - gc_started[0]

    gc.callbacks.append(gc_timer)
    bus = EventBus()
    seen = Counter[str]()

    def count_events(events: Any) -> None:  # a console's bridge: counts what arrives
        for event in events:
            seen[str(getattr(event, "kind", type(event).__name__))] += 1

    if console:
        bus.subscribe(count_events)
    hub = Hub(store, bus, host, port, alerting=HubAlerting(store, dict(BUILTIN_RULE_TYPES)),
              receiver=receiver)
    hub.start()
    ok = hub.wait_subscribed(20)
    samples: list[tuple[float, int, int, int, int, int, float, float, int]] = []
    stop = threading.Event()
    rx = hub.receiver

    def child_cpu() -> float:
        return rx.counters.child_cpu_s if rx is not None else 0.0

    def sample() -> None:
        c = hub.counters
        while not stop.is_set():
            samples.append((time.time(), c.received, c.processed, c.readings_written,
                            len(hub._inbox), c.shed_overload, time.process_time(),
                            child_cpu(), len(hub._shadow_inbox)))
            stop.wait(SAMPLE_EVERY_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    def wait_idle() -> None:
        deadline = time.monotonic() + 300
        idle_at: int | None = None
        while time.monotonic() < deadline:
            # the writer pops a batch before it is pending: idle twice in a row, 0.2 s
            # apart, with nothing processed in between (statuses still trickle in)
            if not hub._inbox and hub._pending is None and not hub._shadow_inbox:
                if idle_at == c.processed:
                    break
                idle_at = c.processed
            else:
                idle_at = None
            time.sleep(0.2)

    c = hub.counters
    cpu0 = time.process_time()  # start-up (imports, migrations, registry) left out
    rx_cpu0 = child_cpu()
    conn.send({"ready": ok})
    conn.recv()  # the stream ended: catch up
    ended = time.time()
    wait_idle()
    caught_up_s = time.time() - ended
    cpu = time.process_time() - cpu0
    time.sleep(COUNTERS_SETTLE_S)
    rx_cpu = child_cpu() - rx_cpu0
    stop.set()
    sampler.join()
    rx_snapshot = rx.snapshot() if rx is not None else {}
    hub.stop()
    rows = quarantined = 0
    if db_url.startswith("sqlite:///"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
            from core.store.telemetry import COUNT_READINGS
            rows = db.execute(COUNT_READINGS).fetchone()[0]
            quarantined = db.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    by_reason = dict(hub.ingestor.rejected_by_reason)
    accepted_msgs = sum(s.received for s in hub.ingestor.stats.values())
    conn.send({
        "ready": ok, "samples": samples, "caught_up_s": caught_up_s,
        "cpu_s": cpu + rx_cpu, "cpu_parent_s": cpu, "cpu_receiver_s": rx_cpu,
        "receiver": receiver, "receiver_counters": rx_snapshot,
        "received": c.received, "processed": c.processed,
        "readings_written": c.readings_written, "quarantined": c.quarantined,
        "shed_overload": c.shed_overload, "inbox_peak": c.inbox_peak,
        "stage_failures": c.stage_failures, "write_failures": c.write_failures,
        "rows_in_db": rows, "quarantine_rows": quarantined, "rejected_by_reason": by_reason,
        "accepted_messages": accepted_msgs, "events_seen": dict(seen),
        "jobs": hub.jobs.snapshot(),
        "shadows_answered": dict(getattr(hub.shadows, "answered", {})),
        "requests_shed": dict(getattr(c, "shed_requests", {})),
        "gc_s_by_generation": list(gc_time),
        "gc_collections": [g["collections"] for g in gc.get_stats()],
    })
    store.close()
    conn.close()


def _sim_child(conn: Connection, host: str, port: int, devices: int, interval_s: float,
               duration_s: float, connect_rate: float) -> None:
    from simulator.runtime import FleetRuntime
    from simulator.scenario import single_group
    from simulator.target import BrokerTarget

    start = float(int(time.time()))
    fleet = single_group(devices, "environmental", interval_s=interval_s).build_fleet(
        seed=1, start_s=start)
    runtime = FleetRuntime(fleet, BrokerTarget.parse(f"mqtt://{host}:{port}"),
                           connect_rate=connect_rate, seed=1, client_id_prefix="bench-")

    marks: dict[str, float] = {}

    def progress(stats: Any, elapsed: float) -> None:
        if runtime.clock_started and "began" not in marks:
            marks["began"] = time.time()

    conn.send({"ready": True})
    conn.recv()
    stats = runtime.run(duration_s, progress=progress, progress_every_s=0.25)
    conn.send({
        "sessions": len(runtime.sessions),
        "telemetry_published": sum(t.sent for t in stats.by_type.values()),
        "dropped": sum(t.dropped for t in stats.by_type.values()),
        "all_connected_after_s": stats.all_connected_after_s,
        "began": marks.get("began", 0.0), "ended": time.time(),
        "cpu_s": time.process_time(),
    })
    conn.close()


# ------------------------------------------------------------------ the live run
def _window_rate(per_second: dict[int, int], t0: float, t1: float) -> float:
    seconds = range(int(t0), int(t1))
    return sum(per_second.get(s, 0) for s in seconds) / max(len(seconds), 1)


def _sampled_rate(samples: list[Any], column: int, t0: float, t1: float,
                  scale: float = 1.0) -> float:
    inside = [s for s in samples if t0 <= s[0] <= t1]
    if len(inside) < 2:
        return 0.0
    return float((inside[-1][column] - inside[0][column]) / scale
                 / (inside[-1][0] - inside[0][0]))


def phase_live(devices: int, interval_s: float, duration_s: float, *, skip_s: float = 5.0,
               connect_rate: float = 2000.0, db_dir: Path | None = None,
               receiver: str = "process", warmup_s: float = 0.0,
               bare: bool = True, console: bool = False) -> dict[str, Any]:
    """One live run; ``bare=False`` leaves the bare subscriber out (the soak: its
    baseline is what the simulator published, and on two cores the subscriber's
    third of a core would be taken from the hub it is not part of); ``console``
    puts a subscriber on the hub's event bus (a console's own hub)."""
    from simulator.broker import EmbeddedBroker, raise_fd_limit

    raise_fd_limit()
    ctx = mp.get_context("spawn")
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-", dir=db_dir))
    db_url = f"sqlite:///{workdir / 'hub.db'}"
    load_before = _load()
    with EmbeddedBroker(prefer="mosquitto", anonymous=True) as broker:
        host, port = broker.host, broker.port
        procs = {}
        children = [
            ("hub", _hub_child, (host, port, db_url, receiver, console)),
            ("bare", _bare_child, (host, port)),
            ("sim", _sim_child, (host, port, devices, interval_s, warmup_s + duration_s,
                                 connect_rate))]
        for name, target, args in (c for c in children if bare or c[0] != "bare"):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=target, args=(child, *args), name=f"bench-{name}")
            proc.start()
            procs[name] = (proc, parent)
        for name, (_proc, parent) in procs.items():
            ready = parent.recv()
            if not ready.get("ready"):
                raise RuntimeError(f"{name} did not get ready")
        procs["sim"][1].send("go")
        sim = procs["sim"][1].recv()
        time.sleep(2.0)  # let the broker hand over what it still holds
        baseline: dict[str, Any] = {"received": 0, "per_second": {}, "cpu_s": 0.0}
        if bare:
            procs["bare"][1].send("stop")
            baseline = procs["bare"][1].recv()
        procs["hub"][1].send("drain")
        hub = procs["hub"][1].recv()
        for proc, _ in procs.values():
            proc.join(60)
    shutil.rmtree(workdir, ignore_errors=True)  # the database: ~1 GB after a 10k soak
    load_after = _load()
    began, ended = sim["began"], sim["ended"]
    t0, t1 = began + warmup_s + skip_s, ended - 1.0
    bare_rate = _window_rate({int(k): v for k, v in baseline["per_second"].items()}, t0, t1)
    samples = hub["samples"]
    hub_in = _sampled_rate(samples, 1, t0, t1)
    hub_stored = _sampled_rate(samples, 3, t0, t1, METRICS_PER_MESSAGE)
    stream = [s for s in samples if began <= s[0] <= ended]
    inbox = [s[4] for s in stream]
    half = len(inbox) // 2
    offered = devices / interval_s
    expected_rows = hub["accepted_messages"] * METRICS_PER_MESSAGE
    # CPU per message: what each would take with a core to itself, so it does not
    # depend on how the scheduler shared the cores (the box is shared).
    stored_msgs = hub["readings_written"] / METRICS_PER_MESSAGE
    bare_cpu_us = baseline["cpu_s"] / max(baseline["received"], 1) * 1e6
    hub_cpu_us = hub["cpu_s"] / max(stored_msgs, 1) * 1e6
    inside = [s for s in samples if t0 <= s[0] <= t1]
    window_stored = window_cpu_us = window_rx_cpu_us = window_shed = 0.0
    if len(inside) >= 2:
        first, last = inside[0], inside[-1]
        window_stored = (last[3] - first[3]) / METRICS_PER_MESSAGE
        window_shed = last[5] - first[5]
        if window_stored:
            window_cpu_us = ((last[6] - first[6]) + (last[7] - first[7])) / window_stored * 1e6
            window_rx_cpu_us = (last[7] - first[7]) / window_stored * 1e6
    return {
        "receiver": receiver, "warmup_s": warmup_s, "console": console,
        "window_stored_messages": window_stored, "window_shed": window_shed,
        # shadow and jobs requests waiting (the devices' connect-time requests)
        "requests_waiting_at_window": (inside[0][8], inside[-1][8]) if inside else (0, 0),
        "requests_waiting_max": max((s[8] for s in stream), default=0),
        # since the stream began: until no request waits for the rest of it
        "requests_settled_s": _settled(stream, began),
        "requests_series": [(round(s[0] - began, 1), s[8]) for s in stream],
        "window_hub_cpu_us_per_stored_msg": window_cpu_us,
        "window_receiver_cpu_us_per_stored_msg": window_rx_cpu_us,
        "cpu_parent_us_per_msg": hub["cpu_parent_s"] / max(stored_msgs, 1) * 1e6,
        "cpu_receiver_us_per_msg": hub["cpu_receiver_s"] / max(stored_msgs, 1) * 1e6,
        "devices": devices, "interval_s": interval_s, "duration_s": duration_s,
        "offered_msg_per_s": offered, "load_before": load_before, "load_after": load_after,
        "sim": sim, "bare": {k: v for k, v in baseline.items() if k != "per_second"},
        "hub": {k: v for k, v in hub.items() if k != "samples"},
        "inbox_series": [(round(s[0] - began, 1), s[4]) for s in stream],
        "window_s": t1 - t0,
        "bare_msg_per_s": bare_rate, "hub_received_msg_per_s": hub_in,
        "hub_stored_msg_per_s": hub_stored,
        "ratio_hub_vs_bare": hub_stored / bare_rate if bare_rate else 0.0,
        "bare_cpu_us_per_msg": bare_cpu_us, "hub_cpu_us_per_msg": hub_cpu_us,
        "ratio_cpu_hub_vs_bare": bare_cpu_us / hub_cpu_us if hub_cpu_us else 0.0,
        "inbox_max": max(inbox, default=0),
        "inbox_median_first_half": statistics.median(inbox[:half]) if half else 0,
        "inbox_median_second_half": statistics.median(inbox[half:]) if inbox else 0,
        "inbox_at_stream_end": inbox[-1] if inbox else 0,
        "caught_up_after_stream_s": hub["caught_up_s"],
        "rows_expected": expected_rows, "rows_in_db": hub["rows_in_db"],
        "all_accepted_stored": hub["rows_in_db"] == expected_rows,
        "published": sim["telemetry_published"], "bare_received": baseline["received"],
        "hub_received": hub["received"],
        "gc_s_by_generation": hub.get("gc_s_by_generation"),
        "gc_collections": hub.get("gc_collections"),
    }


def storm_requests(devices: int, *, with_jobs_every: int = 100) -> tuple[list[str], list[str]]:
    """What the simulator's devices ask at connect, in arrival order: a shadow
    get, a jobs start-next, then the reported-state update; every
    ``with_jobs_every``-th device is a target of a deployment (the rest, the
    common case, have no jobs). Returns (device ids, request topics)."""
    ids = [f"storm-{i:05d}" for i in range(devices)]
    topics = []
    for thing in ids:
        topics += [f"$aws/things/{thing}/shadow/get", f"$aws/things/{thing}/jobs/start-next",
                   f"$aws/things/{thing}/shadow/update"]
    return ids, topics


def _collect(into: list[str], topic: str, body: bytes) -> None:
    into.append(topic)


def phase_requests(devices: int = 10_000, repeat: int = 2,
                   db_dir: Path | None = None) -> dict[str, Any]:
    """CPU of the hub's own request drain (``Hub._drain_requests``) answering a
    connect storm, per request, with the drain's reads batched ("batched") and
    with every request reading for itself ("per_request", the code before),
    alternating on fresh copies of the same SQLite database: half the devices
    have a shadow, 1 % a queued job execution. No broker: replies are collected."""

    from core.ingest.ingestor import Inbound
    from core.model import Deployment
    from core.ports.shadows import ShadowDocument
    from core.services.event_bus import EventBus
    from core.store import Store
    from plugins.local.hub.hub import Hub

    ids, topics = storm_requests(devices)
    workdir = Path(tempfile.mkdtemp(prefix="hub-requests-", dir=db_dir))
    seed = workdir / "seed.db"
    store = Store.open(f"sqlite:///{seed}")
    for thing in ids[::2]:
        store.shadows.save(ShadowDocument(thing, {"interval": 1}, {"interval": 2}, 1),
                           expected_version=None)
    targets = ids[::100]
    job = store.deployments.create(Deployment(
        deployment_id="storm-job", firmware_id="pump:2.0.0", targets=tuple(targets),
        created_by="bench", document={"operation": "ota"})).deployment_id
    store.deployments.release(job, targets)
    store.close()
    update = json.dumps({"state": {"reported": {"interval": 1, "firmware": "1.0.0"}}}).encode()
    out: dict[str, Any] = {"devices": devices, "requests": len(topics)}
    for run in range(repeat):
        for mode in ("per_request", "batched"):
            db = workdir / f"{mode}-{run}.db"
            shutil.copy(seed, db)
            store = Store.open(f"sqlite:///{db}")
            hub = Hub(store, EventBus(), "127.0.0.1", 1, receiver="thread")
            replies: list[str] = []
            publish = functools.partial(_collect, replies)
            hub.shadows._publish = hub.jobs._publish = publish
            if mode == "per_request":
                hub.jobs._pending_many = None
                hub.shadows._get_many = None
            hub._shadow_inbox.extend(
                (Inbound(t, update if t.endswith("/update") else b"{}", 0), None)
                for t in topics)
            gc.collect()
            cpu0 = time.process_time()
            while hub._shadow_inbox:
                hub._drain_requests()
            cpu = time.process_time() - cpu0
            store.close()
            key = f"{mode}_cpu_us_per_request"
            out.setdefault(key + "_runs", []).append(cpu / len(topics) * 1e6)
            out[f"{mode}_replies"] = len(replies)
    for mode in ("per_request", "batched"):
        out[f"{mode}_cpu_us_per_request"] = min(out[f"{mode}_cpu_us_per_request_runs"])
    out["ratio_batched_vs_per_request"] = (out["batched_cpu_us_per_request"]
                                           / out["per_request_cpu_us_per_request"])
    shutil.rmtree(workdir, ignore_errors=True)
    return out


def _settled(stream: list[Any], began: float) -> float | None:
    """Seconds from the stream's start to the first sample after which no shadow
    or jobs request waits again; None if some still wait at its end."""
    if not stream or stream[-1][8]:
        return None
    last_busy = max((i for i, s in enumerate(stream) if s[8]), default=-1)
    return round(float(stream[last_busy + 1][0]) - began, 1)


def _print_live(r: dict[str, Any]) -> None:
    h = r["hub"]
    print(f"\n== receiver {r['receiver']}, warm-up {r['warmup_s']:g} s: "
          f"{r['devices']} devices x {1 / r['interval_s']:g} Hz "
          f"({r['offered_msg_per_s']:,.0f} msg/s offered), {r['duration_s']:g} s; "
          f"load {r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f}"
          f"{'; a console on its event bus' if r.get('console') else ''}")
    print(f"published {r['published']:,}  bare received {r['bare_received']:,}  "
          f"hub received {r['hub_received']:,}  shed {h['shed_overload']:,}  "
          f"quarantined {h['quarantined']:,} {h['rejected_by_reason']}")
    print(f"bare {r['bare_msg_per_s']:,.0f} msg/s   hub in {r['hub_received_msg_per_s']:,.0f}"
          f"   hub stored {r['hub_stored_msg_per_s']:,.0f} msg/s   "
          f"ratio {r['ratio_hub_vs_bare']:.2f}x  (window {r['window_s']:.0f} s)")
    print(f"CPU per message: bare {r['bare_cpu_us_per_msg']:.0f} us, hub "
          f"{r['hub_cpu_us_per_msg']:.0f} us (per stored message, receive included): "
          f"{r['ratio_cpu_hub_vs_bare']:.2f}x; hub's process {r['cpu_parent_us_per_msg']:.0f} us"
          f" + receiver child {r['cpu_receiver_us_per_msg']:.0f} us")
    print(f"in the window: hub CPU {r['window_hub_cpu_us_per_stored_msg']:.0f} us per stored "
          f"message (receiver child {r['window_receiver_cpu_us_per_stored_msg']:.0f} us), "
          f"{r['window_shed']:,.0f} shed; shadow/jobs requests waiting at its start and end "
          f"{r['requests_waiting_at_window']}, at most {r['requests_waiting_max']:,}; "
          f"none waiting from {r.get('requests_settled_s')} s after the stream began")
    print(f"inbox max {r['inbox_max']:,}  median 1st/2nd half "
          f"{r['inbox_median_first_half']:,.0f}/{r['inbox_median_second_half']:,.0f}  at end "
          f"{r['inbox_at_stream_end']:,}  caught up {r['caught_up_after_stream_s']:.1f} s "
          f"after the stream")
    print(f"rows {r['rows_in_db']:,} of {r['rows_expected']:,} expected "
          f"({'all stored' if r['all_accepted_stored'] else 'MISSING'}); "
          f"CPU s: hub {h['cpu_s']:.1f}, bare {r['bare']['cpu_s']:.1f}, "
          f"sim {r['sim']['cpu_s']:.1f}")
    if r.get("gc_s_by_generation"):
        print("hub's garbage collector: s by generation "
              f"{[round(x, 1) for x in r['gc_s_by_generation']]}, "
              f"collections {r['gc_collections']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between messages")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--phases", default="decode,live")
    parser.add_argument("--quick", action="store_true", help="200 devices x 10 Hz, 15 s")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--receiver", default="process",
                        help="process, thread, or both (thread,process) run back to back")
    parser.add_argument("--warmup", type=float, default=0.0,
                        help="seconds streamed before the measured window (same sessions)")
    parser.add_argument("--console", action="store_true",
                        help="a subscriber on the hub's event bus, as a console's own hub "
                             "has (smartiot hub has none)")
    parser.add_argument("--skip", type=float, default=5.0,
                        help="seconds cut from the start of the stream's window")
    args = parser.parse_args(argv)
    if args.quick:
        args.devices, args.interval, args.duration = 200, 0.1, 15.0
    phases = set(args.phases.split(","))
    result: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                              "cores": os.cpu_count()}
    if "decode" in phases:
        d = phase_decode(devices=min(args.devices, 2000))
        result["decode"] = d
        print(f"decode: json.loads {d['bare_json_loads_us']:.1f} us/msg, hub decode+validate "
              f"{d['hub_decode_validate_us']:.1f} us/msg: ratio {d['ratio_vs_json_loads']:.2f}x"
              + (f" (orjson.loads {d['bare_orjson_loads_us']:.1f} us: "
                 f"{d['ratio_vs_orjson_loads']:.2f}x)" if "bare_orjson_loads_us" in d else ""))
    if "requests" in phases:
        q = phase_requests(devices=args.devices)
        result["requests"] = q
        print(f"requests: {q['requests']:,} from {q['devices']:,} devices connecting: "
              f"per request {q['per_request_cpu_us_per_request']:.0f} us CPU, batched "
              f"{q['batched_cpu_us_per_request']:.0f} us "
              f"({q['ratio_batched_vs_per_request']:.2f}x); replies "
              f"{q['per_request_replies']:,} / {q['batched_replies']:,}")
    if "live" in phases:
        for receiver in args.receiver.split(","):
            live = phase_live(args.devices, args.interval, args.duration, skip_s=args.skip,
                              receiver=receiver, warmup_s=args.warmup,
                              console=args.console)
            result.setdefault("live_runs", []).append(live)
            result["live"] = live
            _print_live(live)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.out / f"hub-{stamp}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    print(f"\n{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
