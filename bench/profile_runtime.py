"""cProfile the simulator runtime against a private mosquitto (not a test).

    .venv/bin/python bench/profile_runtime.py --devices 10000 --duration 15
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.broker import EmbeddedBroker
from simulator.runtime import FleetRuntime
from simulator.scenario import single_group
from simulator.target import BrokerTarget


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--connect-rate", type=float, default=5000.0)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--out", default="bench/results/profile.pstats")
    args = parser.parse_args()
    scenario = single_group(args.devices, "environmental", interval_s=1.0)
    with EmbeddedBroker(prefer="mosquitto") as broker:
        fleet = scenario.build_fleet(seed=1, start_s=1_700_000_000.0)
        runtime = FleetRuntime(fleet, BrokerTarget.parse(broker.url), speed=args.speed,
                               connect_rate=args.connect_rate)
        profiler = cProfile.Profile()
        started = []

        def steady(_stats: object, _elapsed: float) -> None:
            # profile the steady state only, from the first progress call after connect
            if runtime.clock_started and not started:
                started.append(True)
                profiler.enable()

        stats = runtime.run(args.duration, progress=steady)
        profiler.disable()
    print(f"published {stats.published:,}, connected after {stats.all_connected_after_s}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(args.out)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
