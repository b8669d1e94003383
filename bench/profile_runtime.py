"""cProfile the simulator runtime against a private mosquitto (not a test).

    .venv/bin/python bench/profile_runtime.py --devices 10000 --duration 15
    .venv/bin/python bench/profile_runtime.py --devices 1000 --speed 40 --duration 200 --no-profile

``--no-profile`` measures instead of profiling: CPU per published message in the
steady state (process CPU, so less sensitive to a busy machine than a rate), the
publish rate, and how many socket writes carried the telemetry.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.broker import EmbeddedBroker
from simulator.runtime import FleetRuntime, RuntimeStats
from simulator.scenario import single_group
from simulator.target import BrokerTarget


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=15.0, help="simulated seconds")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--connect-rate", type=float, default=5000.0)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--no-profile", action="store_true",
                        help="measure CPU per message and rates instead of profiling")
    parser.add_argument("--runtime", metavar="FILE",
                        help="load FleetRuntime from this file instead (A/B against an older "
                        "runtime.py in the same sitting, e.g. from `git show`)")
    parser.add_argument("--out", default="bench/results/profile.pstats")
    args = parser.parse_args()
    runtime_cls = FleetRuntime
    if args.runtime:
        spec = importlib.util.spec_from_file_location("_runtime_under_test", args.runtime)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        runtime_cls = module.FleetRuntime
    scenario = single_group(args.devices, "environmental", interval_s=1.0)
    with EmbeddedBroker(prefer="mosquitto", anonymous=True) as broker:
        fleet = scenario.build_fleet(seed=1, start_s=1_700_000_000.0)
        runtime = runtime_cls(fleet, BrokerTarget.parse(broker.url), speed=args.speed,
                               connect_rate=args.connect_rate)
        profiler = cProfile.Profile()
        marks: dict[str, float] = {}

        def steady(stats: RuntimeStats, _elapsed: float) -> None:
            # the steady state only, from the first progress call after connect
            if runtime.clock_started and not marks:
                marks.update(cpu=time.process_time(), wall=time.monotonic(),
                             published=stats.published,
                             writes=getattr(runtime, "telemetry_writes", 0))
                if not args.no_profile:
                    profiler.enable()

        load = os.getloadavg()
        stats = runtime.run(args.duration, progress=steady, progress_every_s=0.25)
        profiler.disable()
        cpu, wall = time.process_time(), time.monotonic()
    published = stats.published - marks.get("published", 0)
    writes = getattr(runtime, "telemetry_writes", 0) - marks.get("writes", 0)
    steady_wall = wall - marks.get("wall", wall)
    sent = sum(t.sent for t in stats.by_type.values())
    dropped = sum(t.dropped for t in stats.by_type.values())
    reconnects = sum(t.reconnects for t in stats.by_type.values())
    print(f"telemetry sent {sent:,}, dropped {dropped:,}, reconnects {reconnects:,}")
    print(f"published {stats.published:,} (produced {stats.produced:,}), connected after "
          f"{stats.all_connected_after_s}, load average {load[0]:.2f} -> "
          f"{os.getloadavg()[0]:.2f}")
    print(f"steady: {published:,} msgs in {steady_wall:.2f} s = {published / steady_wall:,.0f} "
          f"msg/s requested {args.devices * args.speed:,.0f}; "
          f"{1e6 * (cpu - marks.get('cpu', cpu)) / max(published, 1):.1f} us CPU/msg; "
          f"{writes:,} telemetry socket writes ({published / max(writes, 1):.2f} msgs/write)")
    if not args.no_profile:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(args.out)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
