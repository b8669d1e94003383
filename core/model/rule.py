"""Alert rules: what to watch, where, and how loudly to complain.

A rule is data (type name + parameters) so rules can be stored, edited in the
GUI and extended by plugins; the alert engine turns each into an evaluator
through the rule-type registry.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.errors import ValidationError
from core.model.alert import Severity
from core.model.device import Device
from core.model.timeutil import require_aware, utcnow

RULE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


@dataclass(frozen=True, slots=True)
class RuleScope:
    """Which devices a rule applies to; every non-empty set must match (AND),
    values inside one set are alternatives (OR). Empty scope = the whole fleet.
    ``groups`` match ``device.metadata["group"]``."""

    device_types: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    device_ids: frozenset[str] = frozenset()
    organizations: frozenset[str] = frozenset()

    def matches(self, device: Device) -> bool:
        if self.device_ids and device.device_id not in self.device_ids:
            return False
        if self.device_types and device.device_type not in self.device_types:
            return False
        if self.organizations and device.organization not in self.organizations:
            return False
        if self.tags and not (self.tags & device.tags):
            return False
        return not (self.groups and str(device.metadata.get("group", "")) not in self.groups)

    def as_dict(self) -> dict[str, list[str]]:
        return {name: sorted(getattr(self, name)) for name in
                ("device_types", "groups", "tags", "device_ids", "organizations")
                if getattr(self, name)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuleScope:
        allowed = {"device_types", "groups", "tags", "device_ids", "organizations"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValidationError(
                f"rule scope has unknown key(s) {', '.join(unknown)}; allowed: "
                f"{', '.join(sorted(allowed))}"
            )
        return cls(**{k: frozenset(str(v) for v in data[k]) for k in data})


def new_rule_id() -> str:
    return "rule-" + uuid.uuid4().hex[:10]


@dataclass(frozen=True, slots=True)
class AlertRule:
    """``rule_type`` names a registered type (threshold, rate_of_change, no_data,
    composite, or a plugin's); ``params`` are that type's parameters."""

    name: str
    rule_type: str
    params: dict[str, Any]
    severity: Severity = Severity.WARNING
    scope: RuleScope = field(default_factory=RuleScope)
    enabled: bool = True
    auto_resolve: bool = True
    escalate_after_s: float | None = None
    rule_id: str = field(default_factory=new_rule_id)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    version: int = 1

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValidationError("an alert rule needs a name")
        if RULE_ID.fullmatch(self.rule_id) is None:
            raise ValidationError(
                f"rule id {self.rule_id!r} must be 1-64 letters, digits or . _ : -"
            )
        if not self.rule_type:
            raise ValidationError(f"rule {self.name!r} needs a rule type")
        if not isinstance(self.severity, Severity):
            object.__setattr__(self, "severity", Severity.parse(str(self.severity)))
        if self.escalate_after_s is not None and self.escalate_after_s <= 0:
            raise ValidationError(f"rule {self.name!r}: escalation delay must be positive")
        object.__setattr__(self, "created_at", require_aware(self.created_at, "created_at"))
        object.__setattr__(self, "updated_at", require_aware(self.updated_at, "updated_at"))
