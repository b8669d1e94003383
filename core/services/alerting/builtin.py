"""The four built-in rule types and the one way to turn a rule into an evaluator.

The specs live in core (not in the alerts plugin) so the engine and its unit
tests work without plugins; ``plugins/alerts`` registers exactly these through
``smartiot_register_alert_rule_types``, the same door third parties use.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.errors import ValidationError
from core.model import AlertRule
from core.registrations import AlertRuleTypeSpec
from core.services.alerting import composite, no_data, rate, threshold
from core.services.alerting.evaluator import Evaluator, NeedsRuleTypes

BUILTIN_RULE_TYPES: dict[str, AlertRuleTypeSpec] = {
    spec.type_name: spec
    for spec in (
        AlertRuleTypeSpec(
            "threshold",
            "a metric above or below a limit, with hysteresis and a minimum duration",
            threshold.ThresholdEvaluator,
            threshold.PARAMETERS,
        ),
        AlertRuleTypeSpec(
            "rate_of_change",
            "a metric changing faster than a maximum per minute over a window",
            rate.RateOfChangeEvaluator,
            rate.PARAMETERS,
        ),
        AlertRuleTypeSpec(
            "no_data",
            "a device sending nothing (or being offline) for a number of minutes",
            no_data.NoDataEvaluator,
            no_data.PARAMETERS,
        ),
        AlertRuleTypeSpec(
            "composite",
            "AND / OR over sub-rules of any registered type",
            composite.CompositeEvaluator,
            composite.PARAMETERS,
        ),
    )
}


def build_evaluator(rule: AlertRule, rule_types: Mapping[str, AlertRuleTypeSpec]) -> Evaluator:
    """Build (and thereby validate) the evaluator of ``rule``.

    The rule editor calls this before saving, so the error a person sees names
    the rule and the parameter: "rule 'Hot pumps' (rule-1): parameter 'limit'
    must be a number, got 'hot'"."""
    spec = rule_types.get(rule.rule_type)
    where = f"rule {rule.name!r} ({rule.rule_id})"
    if spec is None:
        known = ", ".join(sorted(rule_types)) or "none"
        raise ValidationError(f"{where}: unknown rule type {rule.rule_type!r} (known: {known})")
    try:
        evaluator = spec.factory(dict(rule.params))
        if isinstance(evaluator, NeedsRuleTypes):
            evaluator.bind_rule_types(rule_types)
    except ValidationError as exc:
        raise ValidationError(f"{where}: {exc}") from None
    if not isinstance(evaluator, Evaluator):
        raise ValidationError(f"{where}: rule type {rule.rule_type!r} did not build an "
                              "evaluator with observe() and tick()")
    return evaluator
