"""Turn what devices publish into stored readings, registry updates and events.

Runs on the hub's writer thread, a batch at a time: one telemetry transaction
per batch, one registry write, one quarantine insert. Every message ends up
in exactly one place: good readings in the telemetry table, everything else
in the quarantine with the reason — nothing is dropped without a trace.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from core.errors import ValidationError
from core.model import Device, DeviceStatus, LinkStats, QuarantinedMessage, Reading
from core.model.timeutil import from_epoch_ms
from core.ports.live import EventKind, FleetEvent
from core.protocol.payloads import ProtocolError, decode_status, decode_telemetry
from core.protocol.topics import DataKind, parse_device_topic
from plugins.local.hub.registry_cache import RegistryCache
from plugins.local.hub.sequence import SequenceTracker, Verdict

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Inbound:
    topic: str
    payload: bytes
    received_ms: int


@dataclass
class BatchResult:
    readings: list[Reading] = field(default_factory=list)
    quarantined: list[QuarantinedMessage] = field(default_factory=list)
    events: list[FleetEvent] = field(default_factory=list)
    by_device: dict[str, list[Reading]] = field(default_factory=dict)


class Ingestor:
    def __init__(
        self,
        cache: RegistryCache,
        *,
        auto_register: bool = True,
        link_stats: dict[str, LinkStats] | None = None,
    ) -> None:
        self.cache = cache
        self.auto_register = auto_register
        self.sequences = SequenceTracker()
        self.stats: dict[str, LinkStats] = dict(link_stats or {})
        for device_id, stats in self.stats.items():
            self.sequences.seed(device_id, stats.last_seq)
        self._dirty_stats: set[str] = set()
        self.rejected_by_reason: dict[str, int] = {}

    # ------------------------------------------------------------------ helpers
    def _stats(self, device_id: str) -> LinkStats:
        return self.stats.get(device_id) or LinkStats(device_id)

    def _bump(self, device_id: str, at: datetime, **deltas: int) -> None:
        current = self._stats(device_id)
        changes = {k: getattr(current, k) + v for k, v in deltas.items()}
        self.stats[device_id] = replace(current, updated_at=at, **changes)
        self._dirty_stats.add(device_id)

    def _reject(self, result: BatchResult, message: Inbound, reason: str, detail: str,
                device_id: str | None, at: datetime) -> None:
        self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + 1
        quarantined = QuarantinedMessage(message.topic, reason, detail, message.payload,
                                         device_id, at)
        result.quarantined.append(quarantined)
        result.events.append(FleetEvent(EventKind.REJECTED, device_id or "",
                                         data={"message": quarantined}))
        if device_id is not None:
            self._bump(device_id, at, rejected=1)

    def take_dirty_stats(self) -> list[LinkStats]:
        dirty = [self.stats[d] for d in self._dirty_stats]
        self._dirty_stats.clear()
        return dirty

    # ------------------------------------------------------------------ processing
    def process(self, batch: Sequence[Inbound], now_ms: int) -> BatchResult:
        result = BatchResult()
        for message in batch:
            try:
                self._one(message, now_ms, result)
            except Exception as exc:
                log.exception("ingesting %s failed", message.topic)
                self._reject(result, message, "internal_error", f"{type(exc).__name__}: {exc}",
                             None, from_epoch_ms(message.received_ms))
        return result

    def _one(self, message: Inbound, now_ms: int, result: BatchResult) -> None:
        at = from_epoch_ms(message.received_ms)
        try:
            parsed = parse_device_topic(message.topic)
        except ValidationError as exc:
            self._reject(result, message, "invalid_device_id", str(exc), None, at)
            return
        if parsed is None:
            return
        if parsed.kind is DataKind.STATUS:
            self._status(message, parsed.org, parsed.device_id, at, result)
        elif parsed.kind is DataKind.TELEMETRY:
            self._telemetry(message, parsed.org, parsed.device_id, now_ms, at, result)

    def _known_device(self, message: Inbound, org: str, device_id: str, device_type: str,
                      firmware: str, at: datetime, result: BatchResult) -> Device | None:
        device = self.cache.get(device_id)
        if device is None:
            if not self.auto_register:
                self._reject(result, message, "unknown_device",
                             f"{device_id} is not registered and auto-registration is off",
                             device_id, at)
                return None
            device = Device(device_id, device_type=device_type or "generic", organization=org,
                            status=DeviceStatus.ONLINE, firmware_version=firmware or None,
                            created_at=at, updated_at=at, last_seen=None)
            self.cache.put(device, important=True)
            result.events.append(FleetEvent(EventKind.DEVICE, device_id, data={"device": device}))
        if device.device_type == "generic" and device_type and device_type != "generic":
            # first heard of through a bare status message; now it says what it is
            device = replace(device, device_type=device_type)
            self.cache.put(device, important=True)
        if device.status is DeviceStatus.DECOMMISSIONED:
            self._reject(result, message, "decommissioned",
                         f"{device_id} is decommissioned; register it again to accept its data",
                         device_id, at)
            return None
        return device

    def _telemetry(self, message: Inbound, org: str, device_id: str, now_ms: int,
                   at: datetime, result: BatchResult) -> None:
        try:
            telemetry = decode_telemetry(message.payload, topic_device_id=device_id,
                                         now_ms=now_ms)
        except ProtocolError as exc:
            known = self.cache.get(device_id)
            self._reject(result, message, exc.reason, str(exc),
                         device_id if known is not None or self.auto_register else None, at)
            return
        device = self._known_device(message, org, device_id, telemetry.device_type,
                                    telemetry.firmware, at, result)
        if device is None:
            return
        outcome = self.sequences.track(device_id, telemetry.seq, telemetry.uptime_s)
        if not outcome.verdict.accepted:
            counter = ("duplicates" if outcome.verdict is Verdict.DUPLICATE else "out_of_order")
            self._bump(device_id, at, **{counter: 1, "lost": outcome.lost_delta})
            self._reject(result, message, outcome.verdict.value,
                         f"{device_id}: seq {telemetry.seq} arrived after seq "
                         f"{self.sequences.last_seq(device_id)}", device_id, at)
            return
        deltas = {"received": 1, "lost": outcome.lost_delta}
        if outcome.verdict is Verdict.REBOOT:
            deltas["reboots"] = 1
        self._bump(device_id, at, **deltas)
        self.stats[device_id] = replace(self.stats[device_id], last_seq=telemetry.seq)

        ts = from_epoch_ms(telemetry.ts_ms)
        readings = [Reading(device_id, metric, ts, value)
                    for metric, value in telemetry.metrics.items()]
        result.readings.extend(readings)
        result.by_device.setdefault(device_id, []).extend(readings)
        result.events.append(FleetEvent(EventKind.TELEMETRY, device_id, tuple(readings),
                                        {"seq": telemetry.seq, "firmware": telemetry.firmware}))

        seen = device.seen(at, firmware_version=telemetry.firmware or None)
        important = seen.firmware_version != device.firmware_version
        if seen.status is not DeviceStatus.ONLINE:
            seen = replace(seen, status=DeviceStatus.ONLINE)
            important = True
        self.cache.put(seen, important=important)
        if important or device.last_seen is None:
            result.events.append(FleetEvent(EventKind.DEVICE, device_id, data={"device": seen}))

    def _status(self, message: Inbound, org: str, device_id: str, at: datetime,
                result: BatchResult) -> None:
        try:
            status = decode_status(message.payload, topic_device_id=device_id)
        except ProtocolError as exc:
            self._reject(result, message, exc.reason, str(exc), device_id, at)
            return
        device = self._known_device(message, org, device_id, status.device_type,
                                    status.firmware, at, result)
        if device is None:
            return
        wanted = DeviceStatus.ONLINE if status.state == "online" else DeviceStatus.OFFLINE
        if device.status is wanted and device.last_seen is not None:
            return
        updated = replace(device, status=wanted, updated_at=at,
                          firmware_version=status.firmware or device.firmware_version,
                          last_seen=at if wanted is DeviceStatus.ONLINE else device.last_seen)
        self.cache.put(updated, important=True)
        result.events.append(FleetEvent(EventKind.DEVICE, device_id, data={"device": updated}))

