"""Evaluator state written down and read back decides exactly as state kept in
memory: an engine that is rebuilt between every two readings (the AWS stream
consumer on a cold start, or a device moving to another shard's consumer)
raises and resolves the same alerts, at the same instants, as one that never
stopped."""

from __future__ import annotations

import json

import pytest

from core.model import AlertRule, Severity
from core.services.alerting import BUILTIN_RULE_TYPES, AlertEngine
from tests.unit.alerting.fakes import T0, Clock, MemoryAlertStore, device, readings

RULES = {
    "threshold": AlertRule("Hot", "threshold",
                           {"metric": "temp", "limit": 80, "hysteresis": 5,
                            "min_duration_s": 15}, Severity.WARNING, rule_id="hot"),
    "rate_of_change": AlertRule("Fast", "rate_of_change",
                                {"metric": "temp", "max_per_minute": 60, "window_s": 30},
                                Severity.WARNING, rule_id="fast"),
    "no_data": AlertRule("Quiet temp", "no_data", {"minutes": 1, "metric": "temp"},
                         Severity.WARNING, rule_id="quiet"),
    "composite": AlertRule("Hot and fast", "composite",
                           {"op": "and", "rules": [
                               {"type": "threshold", "params": {"metric": "temp", "limit": 80,
                                                                "hysteresis": 2}},
                               {"type": "rate_of_change",
                                "params": {"metric": "temp", "max_per_minute": 30}}]},
                           Severity.CRITICAL, rule_id="both"),
}
# rises through the limit, holds, falls back, spikes again
VALUES = [70, 75, 82, 86, 90, 91, 84, 72, 70, 95, 96, 97, 60, 61]


def _outcome(store: MemoryAlertStore) -> list[tuple[str, str, object, object, str]]:
    return sorted((a.rule_id, a.state.value, a.created_at, a.resolved_at, a.message)
                  for a in store.rows.values())


def _engine(rule: AlertRule, store: MemoryAlertStore, clock: Clock) -> AlertEngine:
    return AlertEngine([rule], BUILTIN_RULE_TYPES, store, lambda: [device()], clock)


@pytest.mark.parametrize("rule_type", sorted(RULES))
def test_an_engine_rebuilt_from_saved_state_after_every_reading_decides_alike(
        rule_type: str) -> None:
    rule = RULES[rule_type]
    series = readings("temp", [float(v) for v in VALUES], start=T0, step_s=10)

    kept_store, kept_clock = MemoryAlertStore(), Clock()
    kept = _engine(rule, kept_store, kept_clock)
    for reading in series:
        kept_clock.now = reading.ts
        kept.process(device(), [reading])
    kept_clock.advance(minutes=2)
    kept.tick()

    cold_store, cold_clock = MemoryAlertStore(), Clock()
    saved: dict[str, object] = {}
    for reading in series:
        cold_clock.now = reading.ts
        engine = _engine(rule, cold_store, cold_clock)
        engine.resume(cold_clock.now)
        engine.import_state("pump-1", saved)
        engine.process(device(), [reading])
        saved = json.loads(json.dumps(engine.export_state("pump-1")))  # as stored: JSON
    cold_clock.advance(minutes=2)
    engine = _engine(rule, cold_store, cold_clock)
    engine.resume(cold_clock.now)
    engine.import_state("pump-1", saved)
    engine.tick()

    assert _outcome(cold_store) == _outcome(kept_store)
    assert _outcome(kept_store), "the series must raise something for the test to mean anything"


def test_without_saved_state_a_fresh_engine_would_decide_otherwise() -> None:
    """The control: the minimum duration is forgotten without the saved state."""
    rule = RULES["threshold"]
    store, clock = MemoryAlertStore(), Clock()
    for reading in readings("temp", [82.0, 86.0, 90.0], start=T0, step_s=10):
        clock.now = reading.ts
        _engine(rule, store, clock).process(device(), [reading])
    assert store.rows == {}


def test_a_rule_edited_since_the_state_was_saved_starts_afresh() -> None:
    rule = RULES["threshold"]
    store, clock = MemoryAlertStore(), Clock()
    engine = _engine(rule, store, clock)
    engine.process(device(), readings("temp", [82.0, 86.0], start=T0, step_s=10))
    saved = engine.export_state("pump-1")
    assert saved["hot"]["state"]["breach_since"] is not None
    edited = AlertRule(rule.name, rule.rule_type, rule.params, rule.severity,
                       rule_id=rule.rule_id, version=rule.version + 1)
    fresh = _engine(edited, store, clock)
    fresh.import_state("pump-1", saved)
    assert fresh.export_state("pump-1") == {}
