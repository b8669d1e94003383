"""The default alert rules: what a new database is offered so that something
alerts before anyone has written a rule.

They live in core (not in the local backend) because every front end offers
them: the one-process demo seeds them, a team's console shows a first-run
prompt on an empty rules table, and ``smartiot rules add --defaults`` adds
them from a terminal. The ids are stable, so adding them twice is refused by
id instead of creating duplicates.
"""

from __future__ import annotations

from core.model.alert import Severity
from core.model.rule import AlertRule, RuleScope


def default_rules() -> tuple[AlertRule, ...]:
    """Fresh objects on every call: their timestamps are the time they are added."""
    return (
        AlertRule("Temperature high", "threshold",
                  {"metric": "temperature", "op": "above", "limit": 30.0, "hysteresis": 1.0,
                   "min_duration_s": 10.0},
                  Severity.WARNING, RuleScope(device_types=frozenset({"environmental"})),
                  rule_id="demo-temperature-high"),
        AlertRule("Pump vibration critical", "threshold",
                  {"metric": "vibration_rms", "op": "above", "limit": 7.0, "hysteresis": 0.5,
                   "min_duration_s": 10.0},
                  Severity.CRITICAL, RuleScope(device_types=frozenset({"pump"})),
                  escalate_after_s=600.0, rule_id="demo-pump-vibration"),
        AlertRule("Pump bearing worn out", "threshold",
                  {"metric": "bearing_wear", "op": "above", "limit": 0.9, "hysteresis": 0.05,
                   "min_duration_s": 0.0},
                  Severity.CRITICAL, RuleScope(device_types=frozenset({"pump"})),
                  escalate_after_s=600.0, rule_id="demo-pump-bearing"),
        AlertRule("Battery low", "threshold",
                  {"metric": "battery_pct", "op": "below", "limit": 15.0, "hysteresis": 2.0,
                   "min_duration_s": 0.0},
                  Severity.WARNING, rule_id="demo-battery-low"),
        AlertRule("Device silent", "no_data", {"minutes": 5.0}, Severity.WARNING,
                  rule_id="demo-no-data"),
    )
