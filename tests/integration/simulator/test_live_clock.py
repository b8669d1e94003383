"""A live fleet (no start time given: "now") dates its readings by the wall
clock even when its devices take seconds to connect: its time starts once they
are connected. It used to keep the time it was built at, so 10,000 devices (11 s
to connect) dated every reading 11 s in the past for the whole run, and the
console showed a 1 Hz fleet "last seen 12 s ago". A fleet given a start time
keeps it (reproducible runs). Real mosquitto; the connect slowed on purpose."""

from __future__ import annotations

import json
import time

from simulator.runtime import FleetRuntime
from simulator.scenario import single_group
from simulator.target import BrokerTarget
from tests.mqtt_recorder import Recorder

DEVICES = 12
CONNECT_RATE = 4.0  # devices a second: the fleet takes ~3 s to connect


def _behind(broker, *, live: bool, prefix: str) -> float:
    """How far the fleet's newest reading is behind the wall clock at the run's end."""
    recorder = Recorder(broker.host, broker.port, ["dt/+/+/telemetry"])
    try:
        start = float(int(time.time()))
        fleet = single_group(DEVICES, "environmental", interval_s=1.0).build_fleet(
            seed=3, start_s=start)
        runtime = FleetRuntime(fleet, BrokerTarget.parse(broker.url), seed=3,
                               connect_rate=CONNECT_RATE, client_id_prefix=prefix,
                               live=live)
        runtime.run(3.0)
        ended = time.time()
        time.sleep(0.5)
        stamps = [json.loads(m.payload)["ts"] / 1000
                  for m in recorder.matching(lambda m: m.topic.endswith("/telemetry"))]
        assert len(stamps) >= DEVICES * 2
        return ended - max(stamps)
    finally:
        recorder.close()


def test_a_live_fleet_dates_its_readings_now_however_long_it_took_to_connect(
        mosquitto_broker) -> None:
    assert _behind(mosquitto_broker, live=True, prefix="live-") < 1.5
    # the time it was built at: the connect's seconds behind, all run long
    assert _behind(mosquitto_broker, live=False, prefix="kept-") > 2.0
