"""Time passing, on AWS: what the hub's housekeeping does every few seconds,
run once a minute by a scheduled function.

Silence cannot arrive on a stream, so two things need a clock: devices that
have gone quiet for ``stale_after`` are marked offline (as the hub's registry
cache does), and the alert engine's ``tick`` lets ``no_data`` rules ("Device
silent") fire and clear. The engine state is the stream consumer's
(``iot-alert-state-{stage}``): read for every device, written back where the
tick changed it, with the same version condition — a device the consumer
wrote meanwhile keeps the consumer's state and is ticked again next minute.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.ingest.registry_cache import RegistryCache
from core.model.timeutil import utcnow
from core.ports.alerts import AlertStore
from core.ports.hub import AlertRuleStore
from core.ports.registry import DeviceRegistry
from core.registrations import AlertRuleTypeSpec
from core.services.alerting.engine import AlertEngine, ChangeKind
from plugins.aws.stream.alert_feed import AlertFeed, outbox_entry
from plugins.aws.stream.state import DeviceStateTables, SavedAlertState, StaleState

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(seconds=120)  # the hub's default


@dataclass
class TickOutcome:
    offline: int = 0
    raised: int = 0
    resolved: int = 0
    skipped: int = 0  # devices whose state the consumer changed meanwhile


class AlertTicker:
    def __init__(self, *, registry: DeviceRegistry, alerts: AlertStore, rules: AlertRuleStore,
                 rule_types: Mapping[str, AlertRuleTypeSpec], states: DeviceStateTables,
                 feed: AlertFeed, stale_after: timedelta = STALE_AFTER,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._registry = registry
        self._alerts = alerts
        self._rules = rules
        self._rule_types = dict(rule_types)
        self._states = states
        self._feed = feed
        self._stale_after = stale_after
        self._clock = clock

    def tick(self) -> TickOutcome:
        now = self._clock()
        outcome = TickOutcome()
        cache = RegistryCache(self._registry)
        cache.load()
        outcome.offline = len(cache.mark_stale(now, self._stale_after))
        cache.flush()
        engine = AlertEngine(self._rules.list(), self._rule_types, self._alerts, cache.all,
                             lambda: now)
        engine.resume(now)
        devices = [d.device_id for d in cache.all()]
        stored = self._states.load_many(devices)
        saved = {}
        for device_id in devices:
            alerts = stored[device_id].alerts
            saved[device_id] = alerts or SavedAlertState(0, {}, [])
            engine.import_state(device_id, saved[device_id].rules)
        result = engine.tick(now)
        changes: dict[str, list[dict[str, Any]]] = {}
        for change in result.changes:
            device = cache.get(change.alert.device_id)
            if device is not None:  # the engine ticks the cache's devices only
                changes.setdefault(device.device_id, []).append(
                    outbox_entry(change, device.organization))
            if change.kind is ChangeKind.RESOLVED:
                outcome.resolved += 1
            else:
                outcome.raised += 1
        for device_id in devices:
            self._save_and_publish(device_id, saved[device_id], engine.export_state(device_id),
                                   changes.get(device_id, []), outcome)
        return outcome

    def _save_and_publish(self, device_id: str, before: SavedAlertState, after: dict[str, Any],
                          new: list[dict[str, Any]], outcome: TickOutcome) -> None:
        """As the consumer: the changes go into the item's outbox with the
        state, then out, then the outbox is emptied."""
        pending = [*before.outbox, *new]
        if after == before.rules and not pending:
            return
        try:
            version = before.version
            if after != before.rules or new:
                version = self._states.save_alert_state(device_id, after, version, pending)
            for entry in pending:
                self._feed.deliver(entry)
            self._states.save_alert_state(device_id, after, version, [])
        except StaleState:
            outcome.skipped += 1
            log.info("%s: the stream consumer changed its alert state meanwhile; "
                     "ticked again next time", device_id)
