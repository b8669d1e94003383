"""The OTA agent of one simulated device on the MQTT runtime.

It wires :class:`~simulator.ota.device.OtaDevice` to the world: the Jobs MQTT
API through :class:`~simulator.ota.jobs.JobsClient` on the device's own
session, HTTP Range downloads on the runtime's worker pool (results come back
on the runtime's loop, which owns all device state), timers in simulated
time, and reboots through the device agent (the link drops without a
DISCONNECT and the device comes back with seq and uptime restarted).

Nothing is built for a device until a job reaches it, so a fleet that never
gets a job sends exactly the telemetry it sent before OTA existed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.ota.device import OtaDevice
from simulator.ota.download import FetchResult, http_fetch
from simulator.ota.faults import OtaConfig, OtaFaults
from simulator.ota.jobs import START_NEXT_ATTEMPTS, JobsClient
from simulator.ota.slots import Flash, factory_record
from simulator.ota.verify import TrustStore

if TYPE_CHECKING:
    from simulator.agent import DeviceAgent
    from simulator.runtime import FleetRuntime, Session


@functools.lru_cache(maxsize=8)
def _trust(pems: tuple[bytes, ...], paths: tuple[Path, ...] = ()) -> TrustStore:
    """One key set per fleet, shared by its devices."""
    return TrustStore.from_pems(pems, paths)


class OtaAgent:
    def __init__(self, runtime: FleetRuntime, session: Session, device_agent: DeviceAgent) -> None:
        self.runtime = runtime
        self.session = session
        self.device_agent = device_agent
        self.jobs = JobsClient(session.device_id, self._publish, self._call_later_wall, self)
        self.device: OtaDevice | None = None

    # ------------------------------------------------------------------ set-up
    def _config(self) -> tuple[OtaConfig, OtaFaults]:
        source: Any = self.runtime.source
        config = getattr(source, "ota", None)
        if not isinstance(config, OtaConfig):
            config = OtaConfig()
        faults_of = getattr(source, "ota_faults", None)
        faults = faults_of(self.session.index) if callable(faults_of) else config.faults
        return config, faults

    def _device(self) -> OtaDevice:
        if self.device is None:
            config, faults = self._config()
            firmware = self.runtime.source.device_info(self.session.index)[3]
            seed = getattr(self.runtime.source, "seed", 0)
            self.device = OtaDevice(self, Flash(factory_record(firmware)),
                                    _trust(config.trusted_keys, config.trusted_key_paths),
                                    faults=faults,
                                    seed=seed if isinstance(seed, int) else 0,
                                    device_index=self.session.index)
        return self.device

    # ------------------------------------------------------------------ device agent hooks
    def subscriptions(self) -> list[tuple[str, int]]:
        return self.jobs.subscriptions()

    def on_connected(self) -> None:
        self.session.client.subscribe(self.subscriptions())
        self.jobs.on_connected()
        if self.device is None:
            self.start_next(False)
        else:
            self.device.on_online()

    def on_power_down(self) -> None:
        """The device resets (reboot, power loss): RAM and requests in flight are gone."""
        self.jobs.reset()
        if self.device is not None:
            self.device.power_down()

    def on_boot(self) -> None:
        if self.device is not None:
            self.device.boot()

    def on_message(self, topic: str, payload: bytes) -> bool:
        return self.jobs.on_message(topic, payload)

    # ------------------------------------------------------------------ JobsListener
    def on_notify_next(self, execution: dict[str, Any] | None) -> None:
        if execution is not None or self.device is not None:
            self._device().on_notify_next(execution)

    def on_started(self, execution: dict[str, Any] | None) -> None:
        if execution is not None or self.device is not None:
            self._device().on_started(execution)

    def on_report_done(self, job_id: str) -> None:
        if self.device is not None:
            self.device.on_report_done(job_id)

    def on_job_gone(self, job_id: str) -> None:
        if self.device is not None:
            self.device.on_job_gone(job_id)

    # ------------------------------------------------------------------ OtaHost
    @property
    def device_type(self) -> str:
        return self.session.device_type

    def start_next(self, resume: bool) -> None:
        # A device resuming an update must hear back; one with nothing to resume
        # asks once and otherwise waits for notify-next.
        self.jobs.start_next(None if resume else {"step": "downloading"},
                             START_NEXT_ATTEMPTS if resume else 1)

    def report(self, job_id: str, status: str, details: dict[str, str]) -> None:
        self.jobs.update(job_id, status, details)

    def fetch(self, url: str, start: int, end: int,
              done: Callable[[FetchResult], None]) -> None:
        def finished(result: FetchResult | BaseException) -> None:
            done(result if isinstance(result, FetchResult)
                 else FetchResult(0, error=f"{type(result).__name__}: {result}"))

        self.runtime.run_blocking(lambda: http_fetch(url, start, end), finished)

    def refetch_document(self, job_id: str, done: Callable[[Any], None]) -> None:
        self.jobs.describe(job_id, lambda ex: done(ex.get("jobDocument") if ex else None))

    def call_later(self, delay_s: float, action: Callable[[], None]) -> None:
        self.runtime.call_later(delay_s / self.runtime.speed, action)

    def restart(self) -> None:
        self.device_agent.on_connection_event("reboot", 0.0)

    def set_firmware(self, version: str) -> None:
        setter = getattr(self.runtime.source, "set_firmware", None)
        if callable(setter):
            setter(self.session.index, version)

    # ------------------------------------------------------------------ plumbing
    def _publish(self, topic: str, payload: bytes) -> bool:
        return self.runtime.publish(self.session, topic, payload, qos=1)

    def _call_later_wall(self, delay_s: float, action: Callable[[], None]) -> None:
        self.runtime.call_later(delay_s, action)
