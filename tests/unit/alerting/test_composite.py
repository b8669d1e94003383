from datetime import timedelta

import pytest

from core.errors import ValidationError
from core.model import AlertRule, Reading
from core.registrations import AlertRuleTypeSpec
from core.services.alerting import BUILTIN_RULE_TYPES, CompositeEvaluator, build_evaluator
from tests.unit.alerting.fakes import T0, device

HOT = {"type": "threshold", "params": {"metric": "temp", "limit": 80}}
WET = {"type": "threshold", "params": {"metric": "humidity", "limit": 90}}


def feed(ev, *pairs):
    out = []
    for i, (metric, value) in enumerate(pairs):
        r = Reading("pump-1", metric, T0 + timedelta(seconds=i), value)
        out += [(c.active, c.message) for c in ev.observe(device(), [r], T0)]
    return out


def test_and_needs_every_sub_rule():
    ev = CompositeEvaluator({"op": "and", "rules": [HOT, WET]})
    out = feed(ev, ("temp", 85), ("humidity", 95), ("temp", 70))
    assert [a for a, _ in out] == [True, False]
    assert "temp 85 above limit 80 and humidity 95 above limit 90" in out[0][1]


def test_or_needs_any_sub_rule_and_clears_when_none_holds():
    ev = CompositeEvaluator({"op": "or", "rules": [HOT, WET]})
    out = feed(ev, ("temp", 85), ("humidity", 95), ("temp", 70), ("humidity", 50))
    assert [a for a, _ in out] == [True, False]


def test_edges_in_one_batch_are_merged_in_time_order():
    ev = CompositeEvaluator({"op": "and", "rules": [HOT, WET]})
    batch = [Reading("pump-1", "temp", T0, 85), Reading("pump-1", "humidity", T0, 95),
             Reading("pump-1", "temp", T0 + timedelta(seconds=1), 60)]
    assert [c.active for c in ev.observe(device(), batch, T0)] == [True, False]


def test_nested_and_plugin_types_resolve_through_the_bound_registry():
    class Always:
        def __init__(self, params):
            pass

        def observe(self, device, readings, now):
            from core.services.alerting import Change

            return [Change(True, 1.0, "always", r.ts) for r in readings[:1]]

        def tick(self, device, now):
            return []

    types = {**BUILTIN_RULE_TYPES, "always": AlertRuleTypeSpec("always", "x", Always)}
    rule = AlertRule("combo", "composite", {"op": "and", "rules": [
        {"type": "always"},
        {"type": "composite", "params": {"op": "or", "rules": [HOT]}},
    ]}, rule_id="combo")
    ev = build_evaluator(rule, types)
    assert [c.active for c in ev.observe(device(), [Reading("pump-1", "temp", T0, 90)], T0)] \
        == [True]
    with pytest.raises(ValidationError, match=r"rule 'combo' \(combo\): parameter 'rules\[0\]'"
                                              r": unknown rule type 'always'"):
        build_evaluator(rule, BUILTIN_RULE_TYPES)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"op": "xor", "rules": [HOT]}, "parameter 'op' must be one of and, or"),
        ({"rules": []}, "parameter 'rules' must be a non-empty list"),
        ({"rules": [{"params": {}}]}, "parameter 'rules[0]' must be a mapping with a 'type'"),
        ({"rules": [HOT, {"type": "threshold", "params": {"metric": "t"}}]},
         "parameter 'rules[1]' (threshold): parameter 'limit' is required"),
    ],
)
def test_composite_validation_names_the_sub_rule(params, fragment):
    rule = AlertRule("Hot and wet", "composite", params, rule_id="hw")
    with pytest.raises(ValidationError) as info:
        build_evaluator(rule, BUILTIN_RULE_TYPES)
    assert str(info.value).startswith("rule 'Hot and wet' (hw): ")
    assert fragment in str(info.value)
