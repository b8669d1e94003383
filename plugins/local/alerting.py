"""Run the alert engine inside the hub and keep it in step with edited rules."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from core.context import AppContext
from core.model import AlertRule, Device, Reading
from core.model.events import AlertChanged, FleetEvent
from core.registrations import AlertRuleTypeSpec
from core.services.alerting.builtin import BUILTIN_RULE_TYPES
from core.services.alerting.defaults import default_rules
from core.services.alerting.engine import AlertChange, AlertEngine
from core.services.alerting.evaluator import Sample
from core.store import Store

log = logging.getLogger(__name__)


def _event(change: AlertChange) -> AlertChanged:
    return AlertChanged(change.alert, change=change.kind.value, notify=change.notify)


class HubAlerting:
    """The hub's view of the engine: FleetEvents out, rules re-read when edited."""

    def __init__(self, store: Store, rule_types: dict[str, AlertRuleTypeSpec],
                 devices: Sequence[Device] | None = None) -> None:
        self._store = store
        self._devices: list[Device] = list(devices or [])
        self._rules_seen: dict[str, int] = {}
        rules = store.rules.list()
        self._remember(rules)
        self.engine = AlertEngine(rules, rule_types, store.alerts, self._device_list)

    def set_devices(self, devices: Sequence[Device]) -> None:
        self._devices = list(devices)

    def _device_list(self) -> list[Device]:
        return self._devices

    def _remember(self, rules: Sequence[AlertRule]) -> None:
        self._rules_seen = {r.rule_id: r.version for r in rules}

    def reload_rules_if_changed(self) -> None:
        rules = self._store.rules.list()
        if {r.rule_id: r.version for r in rules} != self._rules_seen:
            self._remember(rules)
            self.engine.set_rules(rules)

    def process(self, device: Device, readings: Sequence[Reading]) -> list[FleetEvent]:
        return [_event(c) for c in self.engine.process(device, readings)]

    def process_batch(self, batch: Iterable[tuple[Device, Sequence[Sample]]],
                      failed: Callable[[Device, Exception], None]) -> list[FleetEvent]:
        """``process_samples`` for every device of one of the hub's write
        batches (the engine's :meth:`~AlertEngine.process_batch`)."""
        return [_event(c) for c in self.engine.process_batch(batch, failed)]

    def tick(self, now: datetime) -> list[FleetEvent]:
        self.reload_rules_if_changed()
        result = self.engine.tick(now)
        events: list[FleetEvent] = [_event(c) for c in result.changes]
        events.extend(AlertChanged(r.alert, change="reminder", notify=True, reminder=r.count)
                      for r in result.reminders)
        return events


def build_alerting(context: AppContext, store: Store) -> HubAlerting:
    rule_types = dict(BUILTIN_RULE_TYPES)
    rule_types.update(context.plugins.alert_rule_types())
    return HubAlerting(store, rule_types)


def seed_default_rules(store: Store) -> int:
    """Give a first-time user rules that the demo fleet will trip; never touches a
    store that already has rules."""
    if store.rules.list():
        return 0
    rules = default_rules()
    for rule in rules:
        store.rules.add(rule)
    return len(rules)
