"""Start a simulated fleet in-process: what tests and the console's demo fleet use.

The runtime runs on its own thread (one thread for all sessions), so the
caller keeps control and can stop it, read its statistics, or reach into the
fleet to change a device while it runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from simulator.broker import EmbeddedBroker
from simulator.fleet import Fleet
from simulator.models import SensorModel
from simulator.ota.faults import OtaFaults
from simulator.runtime import FleetRuntime, RuntimeStats
from simulator.scenario import Scenario
from simulator.target import BrokerTarget


class RunningFleet:
    """A fleet connected to a broker; ``stop()`` disconnects every device cleanly."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        broker_url: str | None = None,
        on_broker: EmbeddedBroker | None = None,
        target: BrokerTarget | None = None,
        seed: int | None = None,
        start_s: float | None = None,
        speed: float = 1.0,
        telemetry_qos: int = 0,
        connect_rate: float = 1000.0,
        shard: tuple[int, int] = (1, 1),
        client_id_prefix: str = "",
        models: Mapping[str, type[SensorModel]] | None = None,
        trusted_keys: Sequence[bytes | str] = (),
        ota_faults: OtaFaults | None = None,
        trusted_key_paths: Sequence[Path] = (),
    ) -> None:
        """``trusted_keys``: code-signing public keys (PEM) the devices trust for OTA,
        e.g. the console's, besides the scenario's; ``ota_faults`` replaces the
        scenario's fleet-wide OTA fault knobs. ``on_broker``: a running embedded
        broker (e.g. the console's) that this fleet's devices are added to, each
        logging in as itself."""
        self.scenario = scenario
        self.broker: EmbeddedBroker | None = None
        live = start_s is None  # live use: readings carry today's time
        if start_s is None:
            start_s = float(int(time.time()))
        self.fleet: Fleet = scenario.build_fleet(seed=seed, start_s=start_s, models=models,
                                                 trusted_keys=trusted_keys, ota_faults=ota_faults,
                                                 trusted_key_paths=trusted_key_paths)
        if target is None and on_broker is not None:
            on_broker.add_devices(self.device_ids)
            target = BrokerTarget.parse(on_broker.url, fleet_secret=on_broker.fleet_secret)
        if target is None:
            if broker_url is None:
                # Our own broker: every device logs in as itself.
                self.broker = EmbeddedBroker(devices=self.device_ids).start()
                broker_url = self.broker.url
            target = BrokerTarget.parse(
                broker_url, fleet_secret=self.broker.fleet_secret if self.broker else None)
        self.target = target
        self.runtime = FleetRuntime(
            self.fleet, target, speed=speed, telemetry_qos=telemetry_qos,
            connect_rate=connect_rate, shard=shard, client_id_prefix=client_id_prefix,
            live=live,
        )
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def device_ids(self) -> list[str]:
        """Every device of the fleet (all shards): who must be able to log in."""
        return list(self.fleet.device_ids)

    @property
    def stats(self) -> RuntimeStats:
        return self.runtime.stats

    def start(self, duration_s: float | None = None) -> RunningFleet:
        def run() -> None:
            try:
                self.runtime.run(duration_s)
            except BaseException as exc:  # noqa: BLE001 - surfaced by stop()/wait()
                self._error = exc

        self._thread = threading.Thread(target=run, name="smartiot-fleet", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> RuntimeStats:
        if self._thread is not None:
            self._thread.join(timeout)
        if self._error is not None:
            raise self._error
        return self.stats

    def stop(self) -> RuntimeStats:
        self.runtime.stop()
        try:
            return self.wait(30)
        finally:
            if self.broker is not None:
                self.broker.stop()
                self.broker = None

    def __enter__(self) -> RunningFleet:
        return self.start() if self._thread is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
