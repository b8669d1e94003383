"""The hub: one MQTT link in, one writer thread out to the store.

paho's network thread only appends raw messages to an inbox; the writer
thread drains it every 100 ms (or sooner when it fills), so ingestion never
waits on the database and the database sees one transaction per batch. When
the database is unreachable, accepted readings stay queued and are retried;
they are not thrown away.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from core.model import Device, Reading
from core.ports.live import EventKind, FleetEvent
from core.protocol.topics import STATUS_FILTER, TELEMETRY_FILTER, parse_jobs_topic
from core.services.event_bus import EventBus
from core.services.rollout import RolloutEngine
from core.store import Store
from plugins.local.hub.ingest import Inbound, Ingestor
from plugins.local.hub.mqtt_link import MqttLink
from plugins.local.hub.registry_cache import RegistryCache
from plugins.local.hub.shadow_host import ShadowHost
from plugins.local.jobs.file_server import FirmwareFileServer
from plugins.local.jobs.host import JobsHost

log = logging.getLogger(__name__)

HUB_FILTERS = (TELEMETRY_FILTER, STATUS_FILTER, "$aws/things/+/shadow/+",
               "$aws/things/+/jobs/#")
ROLLOUT_EVERY_S = 0.5
FLUSH_EVERY_S = 0.1
MAX_BATCH = 5000
MAX_PENDING_READINGS = 2_000_000


class Alerting(Protocol):
    """What the hub needs from the alert engine: ALERT events for what changed."""

    def set_devices(self, devices: Sequence[Device]) -> None: ...

    def process(self, device: Device, readings: Sequence[Reading]) -> list[FleetEvent]: ...

    def tick(self, now: datetime) -> list[FleetEvent]: ...


@dataclass
class HubCounters:
    received: int = 0
    readings_written: int = 0
    quarantined: int = 0
    write_failures: int = 0
    messages_per_s: float = 0.0


class Hub:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        host: str,
        port: int,
        *,
        tls_context: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        stale_after_s: float = 120.0,
        auto_register: bool = True,
        alerting: Alerting | None = None,
        clock: Callable[[], float] = time.time,
        file_server: FirmwareFileServer | None = None,
        rollout_speed: float = 1.0,
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self.stale_after = timedelta(seconds=stale_after_s)
        self.alerting = alerting
        self.cache = RegistryCache(store.registry)
        self.ingestor = Ingestor(self.cache, auto_register=auto_register)
        self.counters = HubCounters()
        self._inbox: deque[Inbound] = deque()
        self._shadow_inbox: deque[Inbound] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pending_readings: list[Reading] = []
        self.link = MqttLink(
            host, port, client_id=f"smartiot-hub-{uuid.uuid4().hex[:8]}",
            filters=HUB_FILTERS, on_message=self._on_message, on_state=self._on_state,
            tls_context=tls_context, username=username, password=password,
        )
        self.shadows = ShadowHost(store.shadows,
                                  lambda topic, body: self.link.publish(topic, body, qos=1))
        # Jobs: the device API, the firmware file server its URLs point at,
        # and the rollout engine deciding who is released when (state in the store).
        self.files = file_server or FirmwareFileServer(store.firmware)
        self.jobs = JobsHost(store.deployments,
                             lambda topic, body: self.link.publish(topic, body, qos=1),
                             self.files.presign, clock=clock)
        self.rollout = RolloutEngine(store.deployments, self.jobs, speed=rollout_speed)
        self.jobs.on_terminal = self.rollout.execution_updated
        self._thread = threading.Thread(target=self._run, name="smartiot-hub-writer",
                                        daemon=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.cache.load()
        if self.alerting is not None:
            self.alerting.set_devices(self.cache.all())
        for stats in self.store.link_stats.list():
            self.ingestor.stats[stats.device_id] = stats
            self.ingestor.sequences.seed(stats.device_id, stats.last_seq)
        self.files.start()
        self._thread.start()
        self.link.start()

    def stop(self) -> None:
        self.link.stop()
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.files.stop()

    def wait_connected(self, timeout: float) -> bool:
        return self.link.wait_connected(timeout)

    # ------------------------------------------------------------------ network thread
    def _on_message(self, topic: str, payload: bytes) -> None:
        message = Inbound(topic, payload, int(self.clock() * 1000))
        if topic.startswith("$aws/"):
            self._shadow_inbox.append(message)
            self._wake.set()
        else:
            self._inbox.append(message)
            if len(self._inbox) >= MAX_BATCH:
                self._wake.set()

    def _on_state(self, state: str) -> None:
        self.bus.set_connection_state(state)
        self.bus.publish([FleetEvent(EventKind.HUB, "", data={
            "connection": state, "messages_per_s": self.counters.messages_per_s})])

    # ------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        last_second = time.monotonic()
        last_housekeeping = last_second
        last_reload = last_second
        last_rollout = last_second
        received_at_last_second = 0
        while not self._stop.is_set():
            self._wake.wait(FLUSH_EVERY_S)
            self._wake.clear()
            try:
                self._drain()
            except Exception:
                log.exception("hub batch failed")
            now = time.monotonic()
            if now - last_second >= 1.0:
                self.counters.messages_per_s = (
                    (self.counters.received - received_at_last_second) / (now - last_second))
                received_at_last_second, last_second = self.counters.received, now
                self.bus.publish([FleetEvent(EventKind.HUB, "", data={
                    "connection": self.link.state,
                    "messages_per_s": self.counters.messages_per_s})])
            if now - last_rollout >= ROLLOUT_EVERY_S:
                last_rollout = now
                self._rollout_tick()
            if now - last_housekeeping >= 5.0:
                last_housekeeping = now
                self._housekeeping()
            if now - last_reload >= 30.0:
                last_reload = now
                self._reload_registry()
        self._drain()

    def _drain(self) -> None:
        while self._shadow_inbox:
            message = self._shadow_inbox.popleft()
            if parse_jobs_topic(message.topic) is not None:
                self.bus.publish(self.jobs.handle(message.topic, message.payload,
                                                  int(self.clock())))
                continue
            self.bus.publish(self.shadows.handle(message.topic, message.payload,
                                                 int(self.clock())))
        while self._inbox or self._pending_readings:
            batch = [self._inbox.popleft() for _ in range(min(len(self._inbox), MAX_BATCH))]
            self.counters.received += len(batch)
            self._ingest(batch)
            if not self._inbox:
                break

    def _ingest(self, batch: list[Inbound]) -> None:
        result = self.ingestor.process(batch, int(self.clock() * 1000))
        self._pending_readings.extend(result.readings)
        try:
            if self._pending_readings:
                written = self.store.telemetry.write_batch(self._pending_readings)
                self.counters.readings_written += written
            self._pending_readings = []
        except Exception:
            self.counters.write_failures += 1
            log.exception("telemetry write failed; %d readings kept for retry",
                          len(self._pending_readings))
            if len(self._pending_readings) > MAX_PENDING_READINGS:
                dropped = len(self._pending_readings) - MAX_PENDING_READINGS
                log.error("database unreachable too long: oldest %d readings dropped", dropped)
                self._pending_readings = self._pending_readings[dropped:]
            time.sleep(0.5)
        self.cache.flush()
        stats = self.ingestor.take_dirty_stats()
        if stats:
            self.store.link_stats.upsert_many(stats)
        if result.quarantined:
            self.store.quarantine.add_many(result.quarantined)
            self.counters.quarantined += len(result.quarantined)
        events = result.events
        if self.alerting is not None:
            for device_id, readings in result.by_device.items():
                device = self.cache.get(device_id)
                if device is not None:
                    events.extend(self.alerting.process(device, readings))
        self.bus.publish(events)

    def _rollout_tick(self) -> None:
        """Releases, aborts, timeouts and retries; then the devices' step timers."""
        for part in (self.rollout, self.jobs):
            try:
                part.tick()
            except Exception:
                log.exception("%s tick failed", type(part).__name__)

    def _housekeeping(self) -> None:
        now = datetime.fromtimestamp(self.clock(), UTC)
        events = [FleetEvent(EventKind.DEVICE, d.device_id, data={"device": d})
                  for d in self.cache.mark_stale(now, self.stale_after)]
        self.cache.flush()
        if self.alerting is not None:
            self.alerting.set_devices(self.cache.all())
            events.extend(self.alerting.tick(now))
        self.bus.publish(events)

    def _reload_registry(self) -> None:
        """Pick up what consoles changed (names, tags, decommissioning)."""
        self.cache.flush()
        self.cache.load()

    def device(self, device_id: str) -> Device | None:
        return self.cache.get(device_id)

    def snapshot(self) -> dict[str, Any]:
        return {"connection": self.link.state, **self.counters.__dict__,
                "rejected_by_reason": dict(self.ingestor.rejected_by_reason),
                "jobs": self.jobs.snapshot()}
