"""Turn what devices publish into stored readings, registry updates and events.

Runs on the hub's writer thread, a batch at a time: one telemetry transaction
per batch, one registry write, one quarantine insert. Every message ends up
in exactly one place: good readings in the telemetry table, everything else
in the quarantine with the reason — nothing is dropped without a trace.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from core.errors import ValidationError
from core.ingest.batch import RowBatch
from core.ingest.fast_records import sample_readings, slot_updater, trusted_readings
from core.ingest.registry_cache import RegistryCache
from core.ingest.sequence import BootState, SequenceTracker, Verdict
from core.model import Device, DeviceStatus, LinkStats, QuarantinedMessage, Reading
from core.model.events import (
    DeviceChanged,
    FleetEvent,
    MessageRejected,
    TelemetryReceived,
)
from core.model.timeutil import from_epoch_ms, utcnow
from core.protocol.payloads import ProtocolError, decode_status, decode_telemetry
from core.protocol.topics import DataKind, DeviceTopic, parse_device_topic
from core.services.alerting.evaluator import Sample

log = logging.getLogger(__name__)

# Topics seen, parsed once: a device publishes on the same few topics for ever.
TOPIC_CACHE_LIMIT = 100_000
_ACCEPTED_FIELDS = ("updated_at", "received", "lost", "out_of_order", "reboots", "last_seq",
                    "last_uptime", "last_ts_ms", "boot_at_ms", "connected_at_ms")
_accepted_stats = slot_updater(LinkStats, _ACCEPTED_FIELDS)
_seen_device = slot_updater(Device, ("last_seen", "firmware_version", "updated_at"))


class RateLimitedLog:
    """One full traceback per reason per ``every_s``; the rest are counted and
    the count is told with the next traceback, so a flood of the same failure
    cannot flood the log (and a new kind of failure is never hidden)."""

    def __init__(self, logger: logging.Logger, *, every_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._every = every_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def exception(self, reason: str, message: str, *args: object) -> None:
        now = self._clock()
        last = self._last.get(reason)
        if last is not None and now - last < self._every:
            self.suppressed[reason] = self.suppressed.get(reason, 0) + 1
            return
        self._last[reason] = now
        skipped = self.suppressed.pop(reason, 0)
        if skipped:
            message += f" ({skipped} more like it in the last {self._every:.0f} s, not shown)"
        self._log.error(message, *args, exc_info=True)


@dataclass(frozen=True, slots=True)
class RegistrationPolicy:
    """Who may appear by just publishing. ``open``: anyone (the demo, a lab);
    ``known-only``: devices registered beforehand; ``rate-limited``: at most
    ``per_minute`` new devices a minute, so a misbehaving or hostile client
    cannot fill the registry."""

    mode: str = "open"  # "open" | "known-only" | "rate-limited"
    per_minute: int = 60

    MODES = ("open", "known-only", "rate-limited")

    @classmethod
    def parse(cls, text: str) -> RegistrationPolicy:
        """``open``, ``known-only`` or ``rate-limited`` with an optional ``N/min``."""
        words = text.strip().lower().replace(":", " ").split()
        if not words or words[0] not in cls.MODES:
            raise ValidationError(f"registration policy {text!r} must be one of "
                                  "open, known-only, rate-limited [N/min]")
        if words[0] != "rate-limited":
            if len(words) > 1:
                raise ValidationError(f"registration policy {text!r}: {words[0]} takes no rate")
            return cls(words[0])
        if len(words) == 1:
            return cls("rate-limited")
        rate = words[1].removesuffix("/min")
        if len(words) > 2 or not rate.isdigit() or not 1 <= int(rate) <= 1_000_000:
            raise ValidationError(f"registration policy {text!r}: the rate must be like 60/min")
        return cls("rate-limited", int(rate))


@dataclass(frozen=True, slots=True)
class Inbound:
    topic: str
    payload: bytes
    received_ms: int
    # The seqs of this topic's messages the hub itself shed (its inbox full)
    # since it kept the topic's previous one: received and dropped, so not to
    # be awaited as possibly late (see SequenceTracker.track).
    shed: tuple[int, ...] = ()


@dataclass
class BatchResult:
    # the accepted readings as table rows (a Reading made only for who iterates)
    readings: RowBatch = field(default_factory=RowBatch)
    quarantined: list[QuarantinedMessage] = field(default_factory=list)
    events: list[FleetEvent] = field(default_factory=list)
    # each device's accepted messages as (time, metrics by name), in arrival
    # order: what the alert engine evaluates (``process_samples``)
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    @property
    def by_device(self) -> dict[str, list[Reading]]:
        """Each device's accepted readings, in arrival order (made on each call,
        from ``samples``: evaluators that take ``Reading`` objects, the AWS
        stream consumer's)."""
        return {device_id: sample_readings(device_id, samples)
                for device_id, samples in self.samples.items()}


class Ingestor:
    def __init__(
        self,
        cache: RegistryCache,
        *,
        auto_register: bool = True,
        link_stats: dict[str, LinkStats] | None = None,
        registration: Mapping[str, RegistrationPolicy] | None = None,
    ) -> None:
        self.cache = cache
        self.auto_register = auto_register
        #: whether a ``TelemetryReceived`` (with a ``Reading`` per metric) is made
        #: per accepted message; the hub turns it off while nobody listens to its
        #: live events (``smartiot hub`` serves consoles through the broker):
        #: those events were a tenth of its writer thread, made to be dropped
        self.live_events = True
        #: per organization; "*" for every other one (default: open)
        self.registration: dict[str, RegistrationPolicy] = dict(registration or {})
        self._registered_at: dict[str, deque[int]] = {}
        self.sequences = SequenceTracker(self._persisted_boot)
        self._batch_now = utcnow()  # process() sets it per batch
        self.stats: dict[str, LinkStats] = {}
        self.restore((link_stats or {}).values())
        self._dirty_stats: set[str] = set()
        self.rejected_by_reason: dict[str, int] = {}
        self.errors = RateLimitedLog(log)
        self._topics: dict[str, DeviceTopic] = {}
        self._at_ms = -1
        self._at = from_epoch_ms(0)
        # when each device's own "offline" status was received (see _before_offline)
        self._said_offline: dict[str, datetime] = {}
        # per device, the time of its newest stored message and the metrics stored
        # at that time (see _same_time)
        self._newest: dict[str, tuple[int, Mapping[str, float]]] = {}

    def _before_offline(self, device: Device, at: datetime) -> bool:
        """A message received before the device said it went offline must not
        bring it back. The local hub now takes a device's statuses and telemetry
        on one connection (its receiver process, or its link in thread mode), in
        the order the device sent them, so there this only settles ties. It stays
        for sources with two paths: on AWS the stream is fed by one IoT rule per
        filter, and a device's last readings can be handled after its "offline"
        (received later); the device then showed online until the silence sweep
        found it minutes later. Only the device's own word counts (not the
        sweep's, which a backlog being drained must still undo). Stamps are in
        milliseconds, and a fleet that stops at once puts a device's last
        reading and its "offline" in the same one, so a tie counts as before (a
        device that comes back says "online" first)."""
        said = self._said_offline.get(device.device_id)
        return device.status is DeviceStatus.OFFLINE and said is not None and at <= said

    def restore(self, stats: Iterable[LinkStats]) -> None:
        """Carry on from what a previous hub run persisted: counters and boot state."""
        for s in stats:
            self.stats[s.device_id] = s
            self.sequences.seed(s.device_id, s.last_seq)

    def _persisted_boot(self, device_id: str) -> BootState | None:
        s = self.stats.get(device_id)
        if s is None or s.last_seq is None:
            return None
        return BootState(s.last_seq, s.last_uptime, s.last_ts_ms, s.boot_at_ms,
                         s.connected_at_ms)

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
        result.events.append(MessageRejected(quarantined))
        # counted against known devices only: an unknown id must not grow the
        # link statistics (the quarantine row still names it)
        if device_id is not None and (device_id in self.stats
                                      or self.cache.get(device_id) is not None):
            self._bump(device_id, at, rejected=1)

    def take_dirty_stats(self) -> list[LinkStats]:
        dirty = [self.stats[d] for d in self._dirty_stats]
        self._dirty_stats.clear()
        return dirty

    # ------------------------------------------------------------------ processing
    def process(self, batch: Sequence[Inbound], now_ms: int) -> BatchResult:
        result = BatchResult()
        # one wall-clock read per batch for the registry's updated_at: per
        # message it was 4 % of the writer at 10,000 msg/s
        self._batch_now = utcnow()
        for message in batch:
            try:
                self._one(message, now_ms, result)
            except Exception as exc:  # noqa: BLE001 - quarantined, counted, logged
                self.errors.exception(f"internal_error:{type(exc).__name__}",
                                      "ingesting %s failed", message.topic[:200])
                self._reject(result, message, "internal_error",
                             f"{type(exc).__name__}: {exc}", _device_of(message.topic),
                             from_epoch_ms(message.received_ms))
        return result

    def parse_topic(self, topic: str) -> DeviceTopic | None:
        """``parse_device_topic``, remembered for topics that parsed (raises as it does)."""
        parsed = self._topics.get(topic)
        if parsed is None:
            parsed = parse_device_topic(topic)
            if parsed is not None:
                if len(self._topics) >= TOPIC_CACHE_LIMIT:
                    self._topics.clear()
                self._topics[topic] = parsed
        return parsed

    def _received_at(self, received_ms: int) -> datetime:
        # messages of one batch mostly share their millisecond
        if received_ms != self._at_ms:
            self._at_ms, self._at = received_ms, from_epoch_ms(received_ms)
        return self._at

    def _one(self, message: Inbound, now_ms: int, result: BatchResult) -> None:
        at = self._received_at(message.received_ms)
        try:
            parsed = self.parse_topic(message.topic)
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
            refused = self._registration_refused(org, device_id, message.received_ms)
            if refused:
                self._reject(result, message, refused[0], refused[1], device_id, at)
                return None
            device = Device(device_id, device_type=device_type or "generic", organization=org,
                            status=DeviceStatus.ONLINE, firmware_version=firmware or None,
                            created_at=at, updated_at=at, last_seen=None)
            self.cache.put(device, important=True)
            result.events.append(DeviceChanged(device))
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

    def _registration_refused(self, org: str, device_id: str,
                              now_ms: int) -> tuple[str, str] | None:
        policy = self.registration.get(org) or self.registration.get("*") or RegistrationPolicy()
        if policy.mode == "known-only":
            return ("unregistered", f"{device_id} is not registered and organization {org!r} "
                                    "accepts known devices only (smartiot devices register)")
        if policy.mode == "rate-limited":
            recent = self._registered_at.setdefault(org, deque())
            while recent and recent[0] <= now_ms - 60_000:
                recent.popleft()
            if len(recent) >= policy.per_minute:
                return ("registration_rate",
                        f"{device_id} is not registered and organization {org!r} already "
                        f"took {policy.per_minute} new devices in the last minute")
            recent.append(now_ms)
        return None

    def _seen(self, device_id: str, at: datetime, result: BatchResult) -> None:
        """A message arrived from a known device, whatever becomes of it: the
        device is alive (a device quarantined for its data is not offline)."""
        device = self.cache.get(device_id)
        if device is None or device.status is DeviceStatus.DECOMMISSIONED:
            return
        seen = device.seen(at)
        important = seen.status is not DeviceStatus.ONLINE
        if important and self._before_offline(device, at):
            # still offline, as of its status (updated_at stays that status's time)
            seen, important = replace(seen, updated_at=device.updated_at), False
        elif important:
            seen = replace(seen, status=DeviceStatus.ONLINE)
            result.events.append(DeviceChanged(seen))
        self.cache.put(seen, important=important)

    def _accepted(self, device_id: str, at: datetime, lost: int, reordered: bool,
                  rebooted: bool) -> None:
        """``_bump`` (received, lost, out_of_order, reboots) and ``_boot_state`` in
        one new record: they ran for every stored message."""
        current = self._stats(device_id)
        boot = self.sequences.boot_fields(device_id)
        if boot is None:  # not tracked (cannot happen after track): keep what is known
            last_seq, uptime, last_ts, boot_at, connected_at = (
                current.last_seq, current.last_uptime, current.last_ts_ms,
                current.boot_at_ms, current.connected_at_ms)
        else:
            last_seq, uptime, last_ts, boot_at, connected_at = boot
        self.stats[device_id] = _accepted_stats(  # in the order of _ACCEPTED_FIELDS
            current, at, current.received + 1, current.lost + lost,
            current.out_of_order + 1 if reordered else current.out_of_order,
            current.reboots + 1 if rebooted else current.reboots,
            last_seq, uptime, last_ts, boot_at, connected_at)
        self._dirty_stats.add(device_id)

    def _boot_state(self, device_id: str, at: datetime) -> None:
        state = self.sequences.state(device_id)
        if state is None:
            return
        self.stats[device_id] = replace(
            self._stats(device_id), updated_at=at, last_seq=state.last_seq,
            last_uptime=state.last_uptime, last_ts_ms=state.last_ts_ms,
            boot_at_ms=state.boot_at_ms, connected_at_ms=state.connected_at_ms)
        self._dirty_stats.add(device_id)

    def _telemetry(self, message: Inbound, org: str, device_id: str, now_ms: int,
                   at: datetime, result: BatchResult) -> None:
        try:
            telemetry = decode_telemetry(message.payload, topic_device_id=device_id,
                                         now_ms=now_ms)
        except ProtocolError as exc:
            known = self.cache.get(device_id)
            self._reject(result, message, exc.reason, str(exc), device_id, at)
            if known is not None:
                self._seen(device_id, at, result)
            return
        device = self._known_device(message, org, device_id, telemetry.device_type,
                                    telemetry.firmware, at, result)
        if device is None:
            return
        last = self.sequences.last_seq(device_id)
        outcome = self.sequences.track(device_id, telemetry.seq, telemetry.uptime_s,
                                       telemetry.ts_ms, shed=message.shed)
        if not outcome.verdict.accepted:
            counter = ("duplicates" if outcome.verdict is Verdict.DUPLICATE else "out_of_order")
            self._bump(device_id, at, **{counter: 1, "lost": outcome.lost_delta})
            why = f": {outcome.detail}" if outcome.detail else ""
            self._reject(result, message, outcome.verdict.value,
                         f"{device_id}: seq {telemetry.seq} arrived after seq {last}{why}",
                         device_id, at)
            self._seen(device_id, at, result)
            return
        reordered = outcome.verdict is Verdict.REORDERED
        rebooted = outcome.verdict is Verdict.REBOOT
        if rebooted:
            log.info("%s rebooted: %s", device_id, outcome.detail)
        self._accepted(device_id, at, outcome.lost_delta, reordered, rebooted)
        clash = self._same_time(device_id, telemetry.ts_ms, telemetry.metrics)
        if clash:
            self._reject(result, message, "same_time",
                         f"{device_id}: seq {telemetry.seq} is dated "
                         f"{from_epoch_ms(telemetry.ts_ms).isoformat(timespec='milliseconds')}, "
                         f"the time of the {', '.join(clash)} reading already stored; the "
                         "store keeps one reading per device, metric and time (a clock of "
                         "whole seconds sending more often than once a second?)",
                         device_id, at)
            self._seen(device_id, at, result)
            return

        ts = from_epoch_ms(telemetry.ts_ms)
        ts_ms = telemetry.ts_ms  # what the store derives from ts, exactly
        metrics = telemetry.metrics
        result.readings.add_message(device_id, ts_ms, metrics)
        samples = result.samples.get(device_id)
        if samples is None:
            result.samples[device_id] = [(ts, metrics)]
        else:
            samples.append((ts, metrics))
        if self.live_events:
            # decode_telemetry checked the id, the names and the values
            result.events.append(TelemetryReceived(
                device_id, tuple(trusted_readings(device_id, ts, metrics)),
                telemetry.seq, telemetry.firmware))

        # a late message may come from before an update (the previous boot's
        # tail): only the newest reading says what the device runs now
        firmware = None if reordered else telemetry.firmware or None
        # Device.seen without re-validating the device (its id, type, tags...)
        last_seen = device.last_seen
        seen = _seen_device(  # last_seen, firmware_version, updated_at
            device, at if last_seen is None or at > last_seen else last_seen,
            firmware or device.firmware_version, self._batch_now)
        important = seen.firmware_version != device.firmware_version
        if seen.status is not DeviceStatus.ONLINE:
            if self._before_offline(device, at):
                seen = replace(seen, updated_at=device.updated_at)  # still offline
            else:
                seen = replace(seen, status=DeviceStatus.ONLINE)
                important = True
        self.cache.put(seen, important=important)
        if important or device.last_seen is None:
            result.events.append(DeviceChanged(seen))

    def _same_time(self, device_id: str, ts_ms: int,
                   metrics: Mapping[str, float]) -> list[str]:
        """The metrics of this message that the device's newest message already
        stored at the same time, and notes this one as the newest.

        The store keeps one reading per device, metric and time, the first; a
        second message of the same time was counted received and silently not
        stored. A device whose clock has whole seconds and sends twice a second
        lost every other reading that way. Now such a message is quarantined with
        its reason (its payload kept), and counted. Two messages of one time with
        different metrics (a device that sends each metric on its own) are both
        stored. Only the newest time is compared: a late message with the time of
        an older one is the rare case left."""
        newest = self._newest.get(device_id)
        if newest is None or ts_ms > newest[0]:
            self._newest[device_id] = (ts_ms, metrics)
            return []
        if ts_ms < newest[0]:
            return []
        clash = sorted(m for m in metrics if m in newest[1])
        if not clash:
            self._newest[device_id] = (ts_ms, {**newest[1], **metrics})
        return clash

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
        newer = status.state == "online" and self.sequences.connected(device_id, status.ts_ms)
        if newer:
            self._boot_state(device_id, at)
        # A status names the image of its connect: a Last Will, or an online status
        # delivered late, may predate an update the device's readings already
        # report, so only a connect newer than any known (or the first word of a
        # device that has sent no reading) may change the version.
        untracked = self.sequences.state(device_id) is None
        firmware = (status.firmware or device.firmware_version) if newer or (
            untracked and status.state == "online") else (
            device.firmware_version or status.firmware or None)
        wanted = DeviceStatus.ONLINE if status.state == "online" else DeviceStatus.OFFLINE
        if wanted is DeviceStatus.OFFLINE:
            self._said_offline[device_id] = at
        else:
            self._said_offline.pop(device_id, None)
        if device.status is wanted and device.last_seen is not None:
            return
        updated = replace(device, status=wanted, updated_at=at,
                          firmware_version=firmware,
                          last_seen=at if wanted is DeviceStatus.ONLINE else device.last_seen)
        self.cache.put(updated, important=True)
        result.events.append(DeviceChanged(updated))



def _device_of(topic: str) -> str | None:
    """The device a message is about, when its topic names one validly."""
    try:
        parsed = parse_device_topic(topic)
    except Exception:  # noqa: BLE001 - a topic that does not parse names no device
        return None
    return None if parsed is None else parsed.device_id


def registration_policies(config: Mapping[str, str]) -> dict[str, RegistrationPolicy]:
    """The config's ``[registration]`` table (organization or "*" -> policy text)."""
    return {org: RegistrationPolicy.parse(text) for org, text in config.items()}
