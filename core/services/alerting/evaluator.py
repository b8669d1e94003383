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
from typing import Any, Protocol, runtime_checkable

from core.model import Device, Reading
from core.model.timeutil import from_epoch_ms, to_epoch_ms
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


Sample = tuple[datetime, Mapping[str, float]]
"""One message of one device as ingest decoded it: its time and its metrics by
name (the same values its ``Reading`` s carry, in the same order)."""


@runtime_checkable
class SampleObserver(Protocol):
    """Optional: ``observe`` on a device's messages as ingest holds them, instead
    of one ``Reading`` per metric. The hub's writer has each message's time and
    metrics already; a rule watching one metric looks it up per message (a dict
    get) rather than stepping over six readings, and the readings need not be
    built for it. Must decide exactly as ``observe`` on the same data does."""

    def observe_samples(self, device: Device, samples: Sequence[Sample],
                        now: datetime) -> list[Change]: ...


@runtime_checkable
class Resumable(Protocol):
    """Optional: lets the engine tell a fresh evaluator (after a restart) that an
    alert is still open, so a clearing reading produces the edge that
    auto-resolves it instead of being taken for "still fine"."""

    def assume_active(self, device_id: str, at: datetime) -> None: ...


@runtime_checkable
class Persistent(Protocol):
    """Optional: an evaluator whose per-device state can be written down and
    read back, so an engine that runs without memory between calls (the AWS
    stream consumer: a cold start, a second shard) decides exactly as one
    that never stopped. The state is plain JSON (numbers, text, lists, dicts,
    null); times are epoch milliseconds."""

    def export_state(self, device_id: str) -> dict[str, Any] | None:
        """The device's state, or None when the evaluator holds none for it."""
        ...

    def import_state(self, device_id: str, state: Mapping[str, Any] | None) -> None:
        """Replace the device's state with ``state`` (None: forget it)."""
        ...


def time_ms(at: datetime | None) -> int | None:
    """A state's time as epoch milliseconds (evaluator state is JSON)."""
    return None if at is None else to_epoch_ms(at)


def time_of(ms: Any) -> datetime | None:
    return None if ms is None else from_epoch_ms(int(ms))


def change_to_json(change: Change | None) -> dict[str, Any] | None:
    if change is None:
        return None
    return {"active": change.active, "value": change.value, "message": change.message,
            "at": to_epoch_ms(change.at)}


def change_of(doc: Mapping[str, Any] | None) -> Change | None:
    if doc is None:
        return None
    value = doc.get("value")
    return Change(bool(doc["active"]), None if value is None else float(value),
                  str(doc["message"]), from_epoch_ms(int(doc["at"])))


@runtime_checkable
class NeedsRuleTypes(Protocol):
    """Optional: evaluators made of other rules (composite) get the full registry,
    so sub-rules may use plugin-provided types too."""

    def bind_rule_types(self, rule_types: Mapping[str, AlertRuleTypeSpec]) -> None: ...
