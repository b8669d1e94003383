"""What a rule type's evaluator promises the alert engine.

An evaluator is built once per rule (``AlertRuleTypeSpec.factory(params)``)
and keeps its own per-device state, so the engine can stay ignorant of what a
"condition" means. Evaluators report *changes* only (condition became true or
false), never the steady state: the engine then touches the alert store only
on an edge, which keeps the store out of the 20,000 msg/s ingest path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from core.model import Device, Reading
from core.registrations import AlertRuleTypeSpec


@dataclass(frozen=True, slots=True)
class Change:
    """One edge of a rule's condition on one device, as an evaluator reports it.

    ``value`` is what the person should see next to the alert (the reading,
    the rate, ...); ``at`` is event time (the reading's timestamp or the tick)."""

    active: bool
    value: float | None
    message: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Transition:
    """A :class:`Change` tied to the rule and device it happened on."""

    device_id: str
    rule_id: str
    active: bool
    value: float | None
    message: str
    at: datetime


@runtime_checkable
class Evaluator(Protocol):
    """The two entry points the engine calls; both return edges in time order."""

    def observe(self, device: Device, readings: Sequence[Reading], now: datetime) -> list[Change]:
        """Feed one device's new readings (time-ordered, possibly several metrics)."""
        ...

    def tick(self, device: Device, now: datetime) -> list[Change]:
        """Let time pass without data (no-data rules fire here; others return [])."""
        ...


@runtime_checkable
class Resumable(Protocol):
    """Optional: lets the engine tell a fresh evaluator (after a restart) that an
    alert is still open, so a clearing reading produces the edge that
    auto-resolves it instead of being taken for "still fine"."""

    def assume_active(self, device_id: str, at: datetime) -> None: ...


@runtime_checkable
class NeedsRuleTypes(Protocol):
    """Optional: evaluators made of other rules (composite) get the full registry,
    so sub-rules may use plugin-provided types too."""

    def bind_rule_types(self, rule_types: Mapping[str, AlertRuleTypeSpec]) -> None: ...
