"""The Kinesis telemetry consumer: each record through the local hub's own
ingest (core.ingest) and alert engine (core.services.alerting), onto the aws
backend's ports.

Per record, in this order, so a failure anywhere leaves a retry that changes
nothing twice:

1. the record's Kinesis position against the device's stored position: at
   or before it, the record is a replay (a retried batch) and is skipped;
2. ingest, exactly as the hub: decode and validate, seq accounting,
   registration policy; what is refused goes to the quarantine with its reason;
3. history (the telemetry store skips readings it holds already),
   quarantine rows (keyed by the record's position), last-seen and health
   through the registry's ``record_activity`` (written when they matter or
   have grown stale, as on the hub);
4. the alert engine on the device's new readings, its state read from and
   written back to ``iot-alert-state-{stage}``; new and resolved alerts to
   consoles and the notification queue;
5. the device's position and seq accounting (``iot-stream-state-{stage}``),
   written last and conditionally: the record is applied.

A device's answer to a command (``cmd/{org}/{device}/res``) is not ingest's:
its own IoT rule puts it where the REST API waits for it
(plugins/aws/stream/rule.py). One that reaches the stream all the same (put
there by the rules of an earlier deploy, still in the stream's retention) is
counted and skipped; it takes no part in the device's position or seq
accounting.

A failure worth a retry (throttling, a service error, a state write lost to
another consumer) makes this consumer forget everything it holds in memory —
the next record starts as a cold start from what DynamoDB holds — and holds
back the device's later records in the same batch, so none overtakes the one
that failed. A failure no retry can cure quarantines the message
(``store_refused``, ``internal_error``) and the record is done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.ingest.batch import RowBatch
from core.ingest.ingestor import Inbound, Ingestor, RegistrationPolicy
from core.ingest.registry_cache import RegistryCache
from core.model import AlertRule, QuarantinedMessage, Reading
from core.model.timeutil import from_epoch_ms, utcnow
from core.ports.alerts import AlertStore
from core.ports.hub import AlertRuleStore
from core.ports.registry import DeviceRegistry
from core.ports.telemetry import TelemetryStore
from core.protocol.topics import DataKind, parse_device_topic
from core.registrations import AlertRuleTypeSpec
from core.services.alerting.engine import AlertChange, AlertEngine, ChangeKind
from plugins.aws.dynamodb.quarantine import DynamoQuarantineStore
from plugins.aws.stream.alert_feed import AlertFeed, outbox_entry
from plugins.aws.stream.failures import TransientFailure, is_refused_data, is_transient
from plugins.aws.stream.records import BAD_RECORD, BadRecord, StreamRecord, decode_record
from plugins.aws.stream.state import DeviceState, DeviceStateTables

log = logging.getLogger(__name__)

RULES_EVERY_S = 60.0  # how often edited alert rules are picked up
DEVICE_EVERY_S = 60.0  # how often a device's registry entry is re-read (edits, retirement)


@dataclass
class Counters:
    """What happened to the records, for the function's metrics."""

    applied: int = 0
    replayed: int = 0
    readings: int = 0
    quarantined: int = 0
    bad_records: int = 0
    failed: int = 0
    resets: int = 0
    alerts_raised: int = 0
    alerts_resolved: int = 0
    command_answers_skipped: int = 0  # answers reach the API through their own rule
    by_reason: dict[str, int] = field(default_factory=dict)


@dataclass
class _Known:
    """What this consumer holds about a device it has loaded."""

    stream_version: int
    position: int
    alert_version: int
    alert_state: dict[str, Any]
    loaded_at: float
    outbox: list[dict[str, Any]] = field(default_factory=list)

    def same_as(self, stored: DeviceState) -> bool:
        return (self.stream_version == (stored.stream.version if stored.stream else 0)
                and self.alert_version == (stored.alerts.version if stored.alerts else 0))


class StreamConsumer:
    def __init__(self, *, registry: DeviceRegistry, telemetry: TelemetryStore,
                 alerts: AlertStore, rules: AlertRuleStore,
                 rule_types: Mapping[str, AlertRuleTypeSpec],
                 quarantine: DynamoQuarantineStore, states: DeviceStateTables,
                 feed: AlertFeed,
                 auto_register: bool = True,
                 registration: Mapping[str, RegistrationPolicy] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._registry = registry
        self._telemetry = telemetry
        self._alerts = alerts
        self._rules = rules
        self._rule_types = dict(rule_types)
        self._quarantine = quarantine
        self._states = states
        self._feed = feed
        self._auto_register = auto_register
        self._registration = dict(registration or {})
        self._monotonic = monotonic
        self.counters = Counters()
        self._held_back: set[str] = set()
        self._reset()

    # ------------------------------------------------------------------ memory
    def _reset(self) -> None:
        """Forget everything held in memory: what follows is a cold start."""
        self._cache = RegistryCache(self._registry)
        self._ingestor = Ingestor(self._cache, auto_register=self._auto_register,
                                  registration=self._registration)
        self._ingestor.live_events = False  # a Lambda has no live view to feed
        self._now = utcnow()
        self._rules_seen: dict[str, int] | None = None
        self._rules_read_at = 0.0
        self._engine: AlertEngine | None = None
        self._known: dict[str, _Known] = {}
        self._checked: set[str] = set()  # devices whose stored state this batch has read

    def _engine_now(self) -> datetime:
        return self._now

    def _alert_engine(self) -> AlertEngine:
        now = self._monotonic()
        if self._engine is None or now - self._rules_read_at >= RULES_EVERY_S:
            rules: list[AlertRule] = self._rules.list()
            seen = {r.rule_id: r.version for r in rules}
            if self._engine is None:
                self._engine = AlertEngine(rules, self._rule_types, self._alerts,
                                           self._cache.all, self._engine_now)
            elif seen != self._rules_seen:
                self._engine.set_rules(rules)
            self._rules_seen, self._rules_read_at = seen, now
        return self._engine

    def start_batch(self) -> None:
        """A new batch: no device is held back any more (Lambda retries from
        the first failed record, so what was held back comes again)."""
        self._held_back.clear()
        self._checked = set()

    # ------------------------------------------------------------------ a batch
    def handle_batch(self, records: Sequence[StreamRecord]) -> dict[str, BaseException]:
        """Apply a batch of one shard; returns the records to retry (sequence
        number -> why). History, quarantine and registry are written once for
        the batch (a minute's rollup once, not once per reading), the alert
        state and position once per device. What no retry can cure makes the
        batch go record by record (:meth:`handle`), which quarantines exactly
        the record at fault."""
        self.start_batch()
        try:
            return self._batch(records)
        except Exception as exc:  # noqa: BLE001 - retried, or record by record: never lost
            self.counters.resets += 1
            self._reset()
            if is_transient(exc):
                self.counters.failed += len(records)
                log.warning("batch of %d records will be retried: %s: %s", len(records),
                            type(exc).__name__, exc)
                return {r.sequence_number: exc for r in records}
            log.warning("batch of %d records goes record by record: %s: %s", len(records),
                        type(exc).__name__, exc)
        failed: dict[str, BaseException] = {}
        self.start_batch()
        for record in records:
            try:
                self.handle(record)
            except TransientFailure as exc:
                failed[record.sequence_number] = exc
        return failed

    def _batch(self, records: Sequence[StreamRecord]) -> dict[str, BaseException]:
        work: list[tuple[StreamRecord, Inbound, str | None]] = []
        quarantine: list[tuple[str, QuarantinedMessage]] = []
        for record in records:
            try:
                message = decode_record(record.data)
            except BadRecord as exc:
                quarantine.append((record.sequence_number, self._bad_record(record, str(exc))))
                continue
            if self._skip_answer(message):
                continue
            work.append((record, message, _device_of(message.topic)))
        if work:
            self._now = from_epoch_ms(work[0][1].received_ms)
        known = self._load_many([d for _, _, d in work if d is not None])
        readings = RowBatch()
        by_device: dict[str, list[Reading]] = {}
        last_of: dict[str, StreamRecord] = {}
        received_of: dict[str, int] = {}
        for record, message, device_id in work:
            if device_id is not None and record.position <= known[device_id].position:
                self.counters.replayed += 1
                continue
            result = self._ingestor.process([message], message.received_ms)
            readings.add_batch(result.readings)
            for device, rows in result.by_device.items():
                by_device.setdefault(device, []).extend(rows)
            quarantine.extend((record.sequence_number, q) for q in result.quarantined)
            if device_id is not None:
                last_of[device_id] = record
                received_of[device_id] = message.received_ms
            self.counters.applied += 1
        if readings:
            self.counters.readings += self._telemetry.write_batch(readings)
        if quarantine:
            self._quarantine.add_from(quarantine)
            for _, q in quarantine:
                self._count(q.reason)
        self._cache.flush()
        failed: dict[str, BaseException] = {}
        for device_id, record in last_of.items():
            try:
                self._now = from_epoch_ms(received_of[device_id])
                self._finish(device_id, known[device_id], by_device.get(device_id, []), record)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failed.update({r.sequence_number: exc for r, _, d in work if d == device_id})
                log.warning("records of %s will be retried: %s: %s", device_id,
                            type(exc).__name__, exc)
        if failed:
            self.counters.failed += len(failed)
            self.counters.resets += 1
            self._reset()  # memory may be ahead of what was stored
        return failed

    def _finish(self, device_id: str, known: _Known, readings: list[Reading],
                last: StreamRecord) -> None:
        """The device's alerts, then its position: the records are applied."""
        try:
            self._evaluate(device_id, known, readings)
        except Exception as exc:
            if is_transient(exc):
                raise
            # as the hub: a failing evaluation must not hold back the data
            log.exception("alert evaluation for %s failed", device_id)
        stats = self._ingestor.stats.get(device_id)
        if stats is not None:
            known.stream_version = self._states.save_position(
                stats, last.sequence_number, known.stream_version)
            known.position = last.position

    # ------------------------------------------------------------------ a record
    def handle(self, record: StreamRecord) -> None:
        """Apply one record; raises :class:`TransientFailure` when it must be retried."""
        try:
            message = decode_record(record.data)
        except BadRecord as exc:
            self._quarantine_bad_record(record, str(exc))
            return
        if self._skip_answer(message):
            return
        device_id = _device_of(message.topic)
        if device_id is not None and device_id in self._held_back:
            self.counters.failed += 1
            raise TransientFailure(f"{device_id}: held back behind its earlier record that "
                                   "failed in this batch")
        try:
            self._apply(record, message, device_id)
        except Exception as exc:  # retried, or quarantined: never lost
            self.counters.resets += 1
            self._reset()  # memory may be ahead of what was stored
            if not is_transient(exc):
                # a retry would fail the same way and hold the shard for ever
                log.exception("record %s of %s cannot be applied; quarantined",
                              record.sequence_number, device_id or message.topic[:200])
                refusal = _refusal(message, device_id, "internal_error", exc)
                self._guarded(device_id, lambda: self._quarantine.add_many(
                    [refusal], source=record.sequence_number))
                self._count("internal_error")
                return
            self._retry(device_id, record, exc)

    def _retry(self, device_id: str | None, record: StreamRecord, exc: BaseException) -> None:
        self.counters.failed += 1
        if device_id is not None:
            self._held_back.add(device_id)
        log.warning("record %s of %s will be retried: %s: %s", record.sequence_number,
                    device_id or "(no device)", type(exc).__name__, exc)
        raise TransientFailure(f"{type(exc).__name__}: {exc}") from exc

    def _guarded(self, device_id: str | None, write: Callable[[], None]) -> None:
        """A quarantine write: a transient failure of it is the record's."""
        try:
            write()
        except Exception as exc:
            if not is_transient(exc):
                raise
            self.counters.failed += 1
            if device_id is not None:
                self._held_back.add(device_id)
            raise TransientFailure(f"{type(exc).__name__}: {exc}") from exc

    def _count(self, reason: str) -> None:
        self.counters.quarantined += 1
        self.counters.by_reason[reason] = self.counters.by_reason.get(reason, 0) + 1

    def _apply(self, record: StreamRecord, message: Inbound, device_id: str | None) -> None:
        self._now = from_epoch_ms(message.received_ms)
        known = self._load(device_id) if device_id is not None else None
        if known is not None and record.position <= known.position:
            self.counters.replayed += 1
            return
        result = self._ingestor.process([message], message.received_ms)
        refused: list[QuarantinedMessage] = []
        if result.readings:
            try:
                self.counters.readings += self._telemetry.write_batch(result.readings)
            except Exception as exc:
                if not is_refused_data(exc):
                    raise
                refused.append(_refusal(message, device_id, "store_refused", exc))
                result.samples.clear()  # nothing stored: nothing to evaluate
        quarantined = [*result.quarantined, *refused]
        if quarantined:
            self._quarantine.add_many(quarantined, source=record.sequence_number)
            for q in quarantined:
                self._count(q.reason)
        self._cache.flush()
        if known is not None and device_id is not None:
            self._evaluate(device_id, known, result.by_device.get(device_id, []))
            stats = self._ingestor.stats.get(device_id)
            if stats is not None:
                known.stream_version = self._states.save_position(
                    stats, record.sequence_number, known.stream_version)
                known.position = record.position
        self.counters.applied += 1

    def _skip_answer(self, message: Inbound) -> bool:
        """True (counted) when ``message`` is a device's command answer, which
        its own rule delivers; False for what ingest handles."""
        try:
            parsed = parse_device_topic(message.topic)
        except Exception:  # noqa: BLE001 - ingest quarantines the topic with its reason
            return False
        if parsed is None or parsed.kind is not DataKind.COMMAND_RESPONSE:
            return False
        self.counters.command_answers_skipped += 1
        return True

    def _load(self, device_id: str) -> _Known:
        return self._load_many([device_id])[device_id]

    def _load_many(self, device_ids: list[str]) -> dict[str, _Known]:
        """The devices' stored state, read once per batch (one BatchGetItem for
        up to 50 devices).

        Successive batches of a shard may run in different Lambda containers,
        so what this one holds from an earlier batch may be behind what
        another wrote since; the stored versions tell, and then everything
        in memory is dropped and the devices are loaded afresh (a cold start).
        Between batches a registry entry is re-read every ``DEVICE_EVERY_S``
        as well: a retirement must reach the consumer."""
        wanted = [d for d in dict.fromkeys(device_ids) if d not in self._checked]
        stored = self._states.load_many(wanted) if wanted else {}
        self._checked.update(wanted)
        now = self._monotonic()
        stale = [d for d in wanted if d in self._known and not self._known[d].same_as(stored[d])]
        if stale:
            log.info("%s processed elsewhere since; reloading state", ", ".join(stale[:5]))
            self.counters.resets += 1
            checked = self._checked
            self._reset()
            self._checked = checked
            fresh = {d: stored.get(d) for d in device_ids}
            missing = [d for d, state in fresh.items() if state is None]
            if missing:
                stored.update(self._states.load_many(missing))
            wanted = list(dict.fromkeys(device_ids))
        for device_id in wanted:
            known = self._known.get(device_id)
            if known is not None:
                if now - known.loaded_at >= DEVICE_EVERY_S:
                    self._cache.flush()
                    self._cache.refresh(device_id)
                    known.loaded_at = now
                continue
            state = stored[device_id]
            self._cache.refresh(device_id)
            if state.stream is not None:
                self._ingestor.restore([state.stream.stats])
            engine = self._alert_engine()
            engine.resume(self._now)  # open alerts first; what was saved then wins
            alert_state = state.alerts.rules if state.alerts is not None else {}
            engine.import_state(device_id, alert_state)
            self._known[device_id] = _Known(
                state.stream.version if state.stream else 0,
                state.stream.position if state.stream else -1,
                state.alerts.version if state.alerts else 0, alert_state, now,
                list(state.alerts.outbox) if state.alerts else [])
        return {d: self._known[d] for d in device_ids}

    def _evaluate(self, device_id: str, known: _Known, readings: list[Any]) -> None:
        """The engine on the device's readings; its changes are written with the
        engine state (the item's outbox) before they are published, so a failed
        publish is retried with the record instead of being lost (the engine
        would see no change the second time: the alert exists)."""
        device = self._cache.get(device_id)
        if device is not None and readings:
            engine = self._alert_engine()
            changes = engine.process(device, readings)
            state = engine.export_state(device_id)
            pending = known.outbox + [outbox_entry(c, device.organization) for c in changes]
            if state != known.alert_state or pending != known.outbox:
                known.alert_version = self._states.save_alert_state(
                    device_id, state, known.alert_version, pending)
                known.alert_state, known.outbox = state, pending
            for change in changes:
                self._count_change(change)
        self._publish(device_id, known)

    def _publish(self, device_id: str, known: _Known) -> None:
        if not known.outbox:
            return
        for entry in known.outbox:
            self._feed.deliver(entry)
        known.alert_version = self._states.save_alert_state(
            device_id, known.alert_state, known.alert_version, [])
        known.outbox = []

    def _count_change(self, change: AlertChange) -> None:
        if change.kind is ChangeKind.RESOLVED:
            self.counters.alerts_resolved += 1
        else:
            self.counters.alerts_raised += 1

    def _bad_record(self, record: StreamRecord, why: str) -> QuarantinedMessage:
        self.counters.bad_records += 1
        return QuarantinedMessage("", BAD_RECORD, f"Kinesis record {record.sequence_number} "
                                  f"(partition key {record.partition_key!r}): {why}",
                                  record.data, None, utcnow())

    def _quarantine_bad_record(self, record: StreamRecord, why: str) -> None:
        bad = self._bad_record(record, why)
        self._guarded(None, lambda: self._quarantine.add_many([bad],
                                                              source=record.sequence_number))
        self._count(BAD_RECORD)

def _device_of(topic: str) -> str | None:
    try:
        parsed = parse_device_topic(topic)
    except Exception:  # noqa: BLE001 - ingest quarantines the topic with its reason
        return None
    return None if parsed is None else parsed.device_id


def _refusal(message: Inbound, device_id: str | None, reason: str,
             exc: BaseException) -> QuarantinedMessage:
    return QuarantinedMessage(message.topic, reason, f"{type(exc).__name__}: {exc}",
                              message.payload, device_id, from_epoch_ms(message.received_ms))
