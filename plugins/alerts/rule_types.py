"""The four built-in alert rule types, registered like any plugin's.

The evaluators live in ``core.services.alerting`` (pure and unit-tested
there); registering them through ``smartiot_register_alert_rule_types`` puts
them in the same registry third-party rule types join, so the rule editor and
the engine treat "threshold" and a plugin's "vibration_fft" alike.
"""

from __future__ import annotations

from collections.abc import Callable

from core.registrations import AlertRuleTypeSpec
from core.services.alerting import BUILTIN_RULE_TYPES


def builtin_rule_types() -> list[AlertRuleTypeSpec]:
    """threshold, rate_of_change, no_data, composite (in that order)."""
    return list(BUILTIN_RULE_TYPES.values())


def register_rule_types(register: Callable[[AlertRuleTypeSpec], None]) -> None:
    for spec in builtin_rule_types():
        register(spec)
