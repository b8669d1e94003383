"""cProfile the hub's writer stage offline: no broker, the hub's own code (not a test).

    .venv/bin/python bench/profile_hub_writer.py                      # 1,000 devices, 20 ticks
    .venv/bin/python bench/profile_hub_writer.py --devices 10000 --ticks 5
    .venv/bin/python bench/profile_hub_writer.py --no-profile         # CPU per message only

Builds a ``Hub`` as ``smartiot hub`` does (SQLite store in a temp dir, the alert engine
with the default rules, nobody on its event bus; ``--console`` adds a subscriber, as a
console's own hub has), never connects it, and feeds the simulator's payloads through
its network-thread entry (``_on_message``) and writer (``_drain_telemetry``) in batches
of what 0.1 s of the fleet sends, each second's messages shuffled as a fleet's sessions
interleave at the broker (``--in-order``: by device, as the simulator steps them). A first pass
registers the devices (a warm hub), then the measured passes run. Reported: the
writer's CPU per message next to a bare ``json.loads`` of the same payloads (the
baseline of hub_bench.py's decode-only subscriber), and the cProfile top list. This
is the part of the hub that hub_bench.py cannot separate from paho's receiving.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _payloads(devices: int, ticks: int, start: float,
              in_order: bool = False) -> list[list[tuple[str, bytes]]]:
    from core.protocol.topics import telemetry_topic
    from simulator.scenario import single_group

    fleet = single_group(devices, "environmental", interval_s=1.0).build_fleet(
        seed=1, start_s=start)
    out = [[(telemetry_topic("demo", m.device_id), m.encode())
            for _, m in fleet.tick(start + step)] for step in range(1, ticks + 1)]
    if not in_order:  # the same shuffle every run
        for step, messages in enumerate(out):
            random.Random(step).shuffle(messages)
    return out


def build_hub(db_url: str, console: bool = False) -> Any:
    from core.services.alerting.builtin import BUILTIN_RULE_TYPES
    from core.services.event_bus import EventBus
    from core.store import Store
    from plugins.local.alerting import HubAlerting, seed_default_rules
    from plugins.local.hub.hub import Hub

    store = Store.open(db_url)
    seed_default_rules(store)
    bus = EventBus()
    if console:
        bus.subscribe(lambda events: None)
    hub = Hub(store, bus, "127.0.0.1", 1,
              alerting=HubAlerting(store, dict(BUILTIN_RULE_TYPES)))
    hub.store.telemetry.defer_latest()  # as Hub.start does
    hub.cache.load()
    assert hub.alerting is not None
    hub.alerting.set_devices(hub.cache.all())
    return hub


def feed(hub: Any, ticks: list[list[tuple[str, bytes]]], per_batch: int) -> int:
    n = 0
    for tick, messages in enumerate(ticks):
        if tick % 5 == 4:  # the hub flushes the latest values every 5 s (1 tick = 1 s)
            hub.store.telemetry.flush_latest()
        for i in range(0, len(messages), per_batch):
            for topic, payload in messages[i:i + per_batch]:
                hub._on_message(topic, payload)
                n += 1
            hub._drain_telemetry()
    hub._retry_leftovers()
    hub.store.telemetry.flush_latest()
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=20, help="messages per device measured")
    parser.add_argument("--batch", type=int, default=1000, help="messages per drain")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--console", action="store_true",
                        help="a subscriber on the event bus (smartiot hub has none)")
    parser.add_argument("--in-order", action="store_true",
                        help="each second's messages by device, not shuffled")
    parser.add_argument("--no-settle", action="store_true",
                        help="leave the garbage collector as it is (no HeapSettler)")
    args = parser.parse_args()
    start = float(int(time.time())) - args.ticks - 5
    ticks = _payloads(args.devices, args.ticks + 1, start, args.in_order)
    with tempfile.TemporaryDirectory(prefix="hub-writer-") as tmp:
        hub = build_hub(f"sqlite:///{tmp}/hub.db", args.console)
        feed(hub, ticks[:1], args.batch)  # registers the fleet: a warm hub
        heap = getattr(hub, "heap", None)  # absent in code from before heap.py
        if heap is not None and not args.no_settle:
            heap.settle()  # as Hub.start does (and housekeeping every minute)
        measured = ticks[1:]
        loads = json.loads
        t0 = time.process_time()
        for messages in measured:
            for _topic, payload in messages:
                loads(payload)
        bare = time.process_time() - t0
        profiler = None if args.no_profile else cProfile.Profile()
        t0 = time.process_time()
        if profiler is not None:
            profiler.enable()
        n = feed(hub, measured, args.batch)
        if profiler is not None:
            profiler.disable()
        cpu = time.process_time() - t0
        rows = hub.counters.readings_written
        hub.store.close()
    print(f"{n:,} messages, {rows:,} rows written; writer {cpu / n * 1e6:.1f} us/msg "
          f"({'profiled' if profiler else 'not profiled'}), json.loads {bare / n * 1e6:.1f} "
          f"us/msg: {cpu / bare:.1f}x")
    if profiler is not None:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
