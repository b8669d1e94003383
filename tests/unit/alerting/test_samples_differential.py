"""The hub evaluates rules on each message's (time, metrics) as ingest decoded it
(``AlertEngine.process_samples``) instead of one ``Reading`` per metric
(``process``). These tests feed the same simulator stream, with faults mixed in
(late and repeated messages, spikes, a device falling silent, a message missing
a metric), to two engines, one per entry point, and require the same alerts
raised, reopened and resolved, in the same order, with the same values, messages
and times, and the same evaluator state at the end."""

from __future__ import annotations

import random
import statistics
from datetime import timedelta

import pytest

from core.ingest.fast_records import trusted_readings
from core.model import AlertRule, Device, DeviceStatus, RuleScope, Severity
from core.model.timeutil import from_epoch_ms
from core.protocol.payloads import decode_telemetry
from core.services.alerting import BUILTIN_RULE_TYPES, AlertEngine
from core.services.alerting.defaults import default_rules
from core.services.alerting.engine import AlertChange
from core.services.alerting.evaluator import Sample
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.unit.alerting.fakes import T0, Clock, MemoryAlertStore

START_S = T0.timestamp()


def _stream(seed: int, ticks: int) -> list[tuple[str, str, int, dict[str, float]]]:
    """(device id, device type, ts ms, metrics) per message, simulator-made, faults added."""
    groups = (DeviceGroup("env", "environmental", 6, interval_s=1.0, id_prefix="env"),
              DeviceGroup("pump", "pump", 4, interval_s=1.0, id_prefix="pump"))
    fleet = Scenario(name="diff", groups=groups, source="test").build_fleet(
        seed=seed, start_s=START_S)
    rng = random.Random(seed)
    out: list[tuple[str, str, int, dict[str, float]]] = []
    types = {"env": "environmental", "pump": "pump"}
    silent: set[str] = set()  # the first device of each group heard
    for step in range(1, ticks + 1):
        for _, message in fleet.tick(START_S + step):
            t = decode_telemetry(message.encode(), topic_device_id=message.device_id,
                                 now_ms=message.ts_ms)
            prefix = message.device_id.split("-")[0]
            if not any(d.startswith(prefix) for d in silent):
                silent.add(message.device_id)
            if message.device_id in silent and 40 <= step < 70:
                continue  # one device of each group falls silent for 30 s
            metrics = dict(t.metrics)
            roll = rng.random()
            if roll < 0.05:  # a spike on every metric
                metrics = {k: v * 5 + 50 for k, v in metrics.items()}
            elif roll < 0.08 and len(metrics) > 1:  # a message missing a metric
                metrics.pop(rng.choice(sorted(metrics)))
            entry = (t.device_id, types[prefix], t.ts_ms, metrics)
            out.append(entry)
            if roll > 0.97:
                out.append(entry)  # delivered twice
            elif roll > 0.94 and len(out) > 30:
                out.insert(len(out) - rng.randint(10, 30), entry)  # arrives late
    return out


def _rules(stream: list[tuple[str, str, int, dict[str, float]]]) -> list[AlertRule]:
    """The default rules plus rules set at the stream's own medians, so every
    type of edge happens many times."""
    values: dict[str, list[float]] = {}
    for _, _, _, metrics in stream:
        for name, value in metrics.items():
            values.setdefault(name, []).append(value)
    rules = list(default_rules())
    for name, seen in sorted(values.items()):
        median = statistics.median(seen)
        spread = statistics.pstdev(seen) or 1.0
        rules.append(AlertRule(f"{name} above median", "threshold",
                               {"metric": name, "op": "above", "limit": median,
                                "hysteresis": spread / 4, "min_duration_s": 2.0},
                               Severity.WARNING, rule_id=f"above-{name}"))
        rules.append(AlertRule(f"{name} below median", "threshold",
                               {"metric": name, "op": "below", "limit": median},
                               Severity.INFO, auto_resolve=name < "m",
                               rule_id=f"below-{name}"))
        rules.append(AlertRule(f"{name} moving", "rate_of_change",
                               {"metric": name, "max_per_minute": spread * 20,
                                "window_s": 5.0}, Severity.INFO, rule_id=f"rate-{name}"))
    first = sorted(values)[0]
    rules.append(AlertRule("quiet metric", "no_data", {"minutes": 0.25, "metric": first},
                           Severity.INFO, rule_id="quiet-metric"))
    rules.append(AlertRule("quiet pump", "no_data", {"minutes": 0.25}, Severity.INFO,
                           RuleScope(device_types=frozenset({"pump"})), rule_id="quiet-pump"))
    rules.append(AlertRule("both", "composite", {
        "op": "and", "rules": [
            {"type": "threshold", "params": {"metric": first, "op": "above",
                                             "limit": statistics.median(values[first])}},
            {"type": "rate_of_change", "params": {"metric": first, "max_per_minute": 1.0,
                                                  "mode": "signed"}}]},
        Severity.CRITICAL, rule_id="composite"))
    return rules


def _summary(changes: list[AlertChange]) -> list[tuple[object, ...]]:
    return [(c.kind, c.alert.rule_id, c.alert.device_id, c.alert.state, c.alert.value,
             c.alert.message, c.transition.at, c.notify) for c in changes]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_samples_and_readings_raise_and_resolve_the_same_alerts(seed: int) -> None:
    stream = _stream(seed, 120)
    rules = _rules(stream)
    devices = {d: Device(d, device_type=t, status=DeviceStatus.ONLINE)
               for d, t, _, _ in stream}
    clocks = (Clock(), Clock(), Clock())
    engines = [AlertEngine(rules, BUILTIN_RULE_TYPES, MemoryAlertStore(),
                           lambda: list(devices.values()), clock) for clock in clocks]
    assert not engines[0].rule_errors
    by_readings: list[AlertChange] = []
    by_samples: list[AlertChange] = []
    by_batch: list[AlertChange] = []  # the hub's way: the whole write batch at once
    failures: list[tuple[Device, Exception]] = []
    rng = random.Random(seed)
    i = 0
    while i < len(stream):
        batch = stream[i:i + rng.randint(1, 40)]  # as the hub's drains cut it
        i += len(batch)
        samples: dict[str, list[Sample]] = {}
        for device_id, _, ts_ms, metrics in batch:
            samples.setdefault(device_id, []).append((from_epoch_ms(ts_ms), metrics))
        for device_id, messages in samples.items():
            readings = [r for ts, metrics in messages
                        for r in trusted_readings(device_id, ts, metrics)]
            by_readings += engines[0].process(devices[device_id], readings)
            by_samples += engines[1].process_samples(devices[device_id], messages)
        by_batch += engines[2].process_batch(
            ((devices[d], messages) for d, messages in samples.items()),
            lambda device, exc: failures.append((device, exc)))
        newest = from_epoch_ms(batch[-1][2])
        for clock in clocks:
            clock.now = newest + timedelta(seconds=1)
        by_readings += engines[0].tick().changes
        by_samples += engines[1].tick().changes
        by_batch += engines[2].tick().changes
    kinds = {c.kind for c in by_readings}
    assert len(by_readings) > 100 and len(kinds) == 3  # raised, reopened, resolved
    assert {c.alert.rule_id for c in by_readings} >= {
        "composite", "quiet-pump", "quiet-metric"} | {r.rule_id for r in rules
                                                      if r.rule_id.startswith("rate-")}
    assert _summary(by_samples) == _summary(by_readings)
    assert _summary(by_batch) == _summary(by_readings) and failures == []
    for device_id in devices:
        assert engines[1].export_state(device_id) == engines[0].export_state(device_id)
        assert engines[2].export_state(device_id) == engines[0].export_state(device_id)


def test_a_batch_goes_on_past_a_device_whose_rule_raises() -> None:
    """One device's evaluation fails (a plugin's rule with a bug): it is
    handed back with its error, and every other device of the batch is
    still evaluated, before and after it."""
    class Fussy:
        def observe(self, device, readings, now):  # type: ignore[no-untyped-def]
            if device.device_id == "d-2":
                raise ZeroDivisionError("the plugin's bug")
            return []

        def tick(self, device, now):  # type: ignore[no-untyped-def]
            return []

    from core.registrations import AlertRuleTypeSpec
    rules = [AlertRule("fussy", "fussy", {}, Severity.INFO, rule_id="fussy"),
             AlertRule("hot", "threshold", {"metric": "t", "limit": 10.0}, Severity.INFO,
                       rule_id="hot")]
    types = dict(BUILTIN_RULE_TYPES) | {"fussy": AlertRuleTypeSpec("fussy", "raises",
                                                                     lambda params: Fussy())}
    engine = AlertEngine(rules, types, MemoryAlertStore(), list, Clock())
    at = from_epoch_ms(1_700_000_000_000)
    batch = [(Device(f"d-{i}", status=DeviceStatus.ONLINE), [(at, {"t": 20.0})])
             for i in range(1, 4)]
    failed: list[tuple[str, str]] = []
    changes = engine.process_batch(batch, lambda d, exc: failed.append((d.device_id, str(exc))))
    assert failed == [("d-2", "the plugin's bug")]
    raised = {c.alert.device_id for c in changes if c.alert.rule_id == "hot"}
    assert {"d-1", "d-3"} <= raised


def test_a_rule_whose_type_has_no_sample_path_gets_the_readings() -> None:
    """A plugin's evaluator that only knows ``observe`` sees exactly the readings
    ``process`` would have given it, built once for the batch."""
    seen: list[list[tuple[str, str, object, float]]] = []

    class Recorder:
        def observe(self, device, readings, now):  # type: ignore[no-untyped-def]
            seen.append([(r.device_id, r.metric, r.ts, r.value) for r in readings])
            return []

        def tick(self, device, now):  # type: ignore[no-untyped-def]
            return []

    from core.registrations import AlertRuleTypeSpec
    spec = AlertRuleTypeSpec("recorder", "records", lambda params: Recorder())
    rule = AlertRule("rec", "recorder", {}, Severity.INFO, rule_id="rec")
    engine = AlertEngine([rule], {"recorder": spec}, MemoryAlertStore(), list, Clock())
    at = from_epoch_ms(1_700_000_000_000)
    messages = [(at, {"a": 1.0, "b": 2.0}), (at + timedelta(seconds=1), {"a": 3.0})]
    assert engine.process_samples(Device("dev-1", status=DeviceStatus.ONLINE), messages) == []
    assert seen == [[("dev-1", "a", at, 1.0), ("dev-1", "b", at, 2.0),
                     ("dev-1", "a", at + timedelta(seconds=1), 3.0)]]


def test_rules_in_scope_follow_a_device_that_changes_type_and_tags() -> None:
    """The scope cache is keyed by what scopes look at: a device whose type or
    tags change is judged by the rules of what it is now."""
    rule = AlertRule("hot", "threshold", {"metric": "t", "limit": 10.0}, Severity.INFO,
                     RuleScope(device_types=frozenset({"pump"}), tags=frozenset({"site-a"})),
                     rule_id="hot")
    engine = AlertEngine([rule], BUILTIN_RULE_TYPES, MemoryAlertStore(), list, Clock())
    at = from_epoch_ms(1_700_000_000_000)
    hot = [(at, {"t": 20.0})]
    assert engine.process_samples(Device("d-1", device_type="pump",
                                         status=DeviceStatus.ONLINE), hot) == []
    tagged = Device("d-1", device_type="pump", tags=frozenset({"site-a"}),
                    status=DeviceStatus.ONLINE)
    assert [c.alert.rule_id for c in engine.process_samples(tagged, hot)] == ["hot"]
    other = Device("d-2", device_type="meter", tags=frozenset({"site-a"}),
                   status=DeviceStatus.ONLINE)
    assert engine.process_samples(other, hot) == []
    engine.set_rules([])  # edited away: the cache forgets it
    assert engine.process_samples(Device("d-3", device_type="pump", tags=frozenset(
        {"site-a"}), status=DeviceStatus.ONLINE), hot) == []
