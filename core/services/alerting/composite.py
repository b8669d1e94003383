"""``composite``: AND / OR over sub-rules, each ``{"type": ..., "params": {...}}``.

Each sub-rule is a full evaluator with its own state (so a threshold inside
keeps its hysteresis and minimum duration). Their edges are merged in time
order and the combined condition is re-evaluated after each, which makes the
composite's own edges deterministic even when sub-rules change in the same
batch. Sub-rule types are looked up in the full registry the engine binds
(plugin types included); before binding, the built-in types are used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.errors import ValidationError
from core.model import Device, Reading
from core.registrations import AlertRuleTypeSpec
from core.services.alerting.evaluator import (
    Change,
    Evaluator,
    Persistent,
    Resumable,
    change_of,
    change_to_json,
)
from core.services.alerting.params import Params

PARAMETERS = ("op", "rules")


@dataclass(slots=True)
class _State:
    children: list[Change | None] = field(default_factory=list)
    active: bool = False


class CompositeEvaluator:
    def __init__(self, params: Mapping[str, Any]) -> None:
        p = Params(params, PARAMETERS)
        self.op = p.choice("op", ("and", "or"), "and")
        specs = p.raw("rules")
        if not isinstance(specs, list | tuple) or not specs:
            raise ValidationError("parameter 'rules' must be a non-empty list of "
                                  "{type, params} sub-rules")
        self._specs: list[tuple[str, Mapping[str, Any]]] = []
        for i, spec in enumerate(specs):
            if not isinstance(spec, Mapping) or not isinstance(spec.get("type"), str):
                raise ValidationError(f"parameter 'rules[{i}]' must be a mapping with a "
                                      f"'type' name and 'params', got {spec!r}")
            extra = sorted(set(spec) - {"type", "params"})
            if extra:
                raise ValidationError(f"parameter 'rules[{i}]' has unknown key(s) "
                                      f"{', '.join(extra)}; allowed: type, params")
            sub_params = spec.get("params") or {}
            if not isinstance(sub_params, Mapping):
                raise ValidationError(f"parameter 'rules[{i}].params' must be a mapping")
            self._specs.append((spec["type"], sub_params))
        from core.services.alerting.builtin import BUILTIN_RULE_TYPES

        self.children: list[Evaluator] = self._build(BUILTIN_RULE_TYPES.get, lenient=True)
        self._states: dict[str, _State] = {}

    def _build(self, lookup: Callable[[str], AlertRuleTypeSpec | None], *,
               lenient: bool = False) -> list[Evaluator]:
        children: list[Evaluator] = []
        for i, (type_name, sub_params) in enumerate(self._specs):
            spec = lookup(type_name)
            if spec is None:
                if lenient:  # maybe a plugin's type: decided when the engine binds
                    children.append(_Unbound(type_name))
                    continue
                raise ValidationError(f"parameter 'rules[{i}]': unknown rule type "
                                      f"{type_name!r}")
            try:
                child = spec.factory(dict(sub_params))
            except ValidationError as exc:
                raise ValidationError(f"parameter 'rules[{i}]' ({type_name}): {exc}") from None
            if not isinstance(child, Evaluator):
                raise ValidationError(f"parameter 'rules[{i}]': rule type {type_name!r} does "
                                      "not build an evaluator (observe/tick)")
            children.append(child)
        return children

    def bind_rule_types(self, rule_types: Mapping[str, AlertRuleTypeSpec]) -> None:
        self.children = self._build(rule_types.get)
        for child in self.children:
            if hasattr(child, "bind_rule_types"):
                child.bind_rule_types(rule_types)
        self._states.clear()

    def _combine(self, state: _State) -> bool:
        flags = [c is not None and c.active for c in state.children]
        return all(flags) if self.op == "and" else any(flags)

    def _merge(self, device_id: str, per_child: list[list[Change]]) -> list[Change]:
        state = self._states.setdefault(device_id, _State([None] * len(self.children)))
        edges = sorted(((c.at, i, c) for i, changes in enumerate(per_child) for c in changes),
                       key=lambda e: (e[0], e[1]))
        out: list[Change] = []
        for at, i, change in edges:
            state.children[i] = change
            combined = self._combine(state)
            if combined == state.active:
                continue
            state.active = combined
            parts = [c.message for c in state.children if c is not None and c.active == combined]
            joiner = " and " if (self.op == "and") == combined else "; "
            out.append(Change(combined, change.value, joiner.join(parts) or change.message, at))
        return out

    def observe(self, device: Device, readings: Sequence[Reading], now: datetime) -> list[Change]:
        return self._merge(device.device_id,
                           [c.observe(device, readings, now) for c in self.children])

    def tick(self, device: Device, now: datetime) -> list[Change]:
        return self._merge(device.device_id, [c.tick(device, now) for c in self.children])

    def assume_active(self, device_id: str, at: datetime) -> None:
        """Every sub-rule is assumed active too: each then clears on its own
        evidence, and the combination clears exactly when it really should,
        without a clear-and-refire flap after a restart."""
        for child in self.children:
            if isinstance(child, Resumable):
                child.assume_active(device_id, at)
        assumed = Change(True, None, "still active at restart", at)
        self._states[device_id] = _State([assumed] * len(self.children), active=True)

    def export_state(self, device_id: str) -> dict[str, Any] | None:
        """Its own state and each sub-rule's; a sub-rule type that cannot
        export its state makes the whole composite's state unexportable."""
        if not all(isinstance(c, Persistent) for c in self.children):
            return None
        own = self._states.get(device_id)
        children = [c.export_state(device_id) for c in self.children
                    if isinstance(c, Persistent)]
        if own is None and all(c is None for c in children):
            return None
        return {"active": own.active if own else False,
                "changes": [change_to_json(c) for c in own.children] if own else None,
                "children": children}

    def import_state(self, device_id: str, state: Mapping[str, Any] | None) -> None:
        children = (state or {}).get("children") or [None] * len(self.children)
        for child, child_state in zip(self.children, children, strict=False):
            if isinstance(child, Persistent):
                child.import_state(device_id, child_state)
        changes = None if state is None else state.get("changes")
        if changes is None:
            self._states.pop(device_id, None)
            return
        self._states[device_id] = _State([change_of(c) for c in changes],
                                         bool(state["active"]) if state else False)


class _Unbound:
    """Placeholder for a sub-rule whose type only the full registry knows."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def _fail(self) -> list[Change]:
        raise ValidationError(f"unknown rule type {self.type_name!r} in a composite rule")

    def observe(self, device: Device, readings: Sequence[Reading], now: datetime) -> list[Change]:
        return self._fail()

    def tick(self, device: Device, now: datetime) -> list[Change]:
        return self._fail()
