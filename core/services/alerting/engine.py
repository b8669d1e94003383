"""The alert engine: rule evaluators in, alert store changes out.

The hub calls ``process(device, readings)`` for each ingested batch and
``tick(now)`` periodically (every few seconds); both return what changed so
the hub can publish events. The store is touched only on condition edges.

Decisions:

* One open alert per (rule, device): while one is open (active or
  acknowledged), recurrences change nothing.
* Recurrence after a resolution reopens the most recently resolved alert of
  that rule and device if it was resolved within ``reopen_window`` (default
  1 h): a flapping sensor stays one queue item with its history instead of
  flooding the queue. Later recurrences are a new incident and a new alert.
* Auto-resolve (``rule.auto_resolve``) resolves as ``"system"``; if a person
  changed the alert at the same moment, it re-reads and tries again.
* Snoozed alerts still produce changes (the table must stay true) but with
  ``notify=False``, and they get no escalation reminders.
* A rule whose parameters are invalid is skipped and reported in
  ``rule_errors``: one bad rule must not stop alerting for the others.
* Decommissioned devices raise no alerts.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.errors import ConcurrentModification, IllegalTransition
from core.ingest.fast_records import sample_readings
from core.model import Alert, AlertRule, AlertState, Device, DeviceStatus, Reading
from core.model.timeutil import utcnow
from core.ports.alerts import AlertQuery, AlertStore
from core.registrations import AlertRuleTypeSpec
from core.services.alerting.builtin import build_evaluator
from core.services.alerting.escalation import EscalationTracker, Reminder
from core.services.alerting.evaluator import (
    Change,
    Evaluator,
    Persistent,
    Resumable,
    Sample,
    SampleObserver,
    Transition,
)

log = logging.getLogger(__name__)

DEFAULT_REOPEN_WINDOW = timedelta(hours=1)
_SAVE_ATTEMPTS = 3
_SCOPE_CACHE_LIMIT = 10_000


class ChangeKind(enum.StrEnum):
    RAISED = "raised"
    REOPENED = "reopened"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert the engine created or changed; ``notify`` is False for snoozed alerts."""

    kind: ChangeKind
    alert: Alert
    transition: Transition
    notify: bool = True


@dataclass(frozen=True, slots=True)
class TickResult:
    changes: list[AlertChange] = field(default_factory=list)
    reminders: list[Reminder] = field(default_factory=list)


@dataclass(slots=True)
class _Compiled:
    rule: AlertRule
    evaluator: Evaluator
    # the evaluator's ``observe_samples`` when it has one (looked up once, not
    # per message: an isinstance against a runtime Protocol costs microseconds)
    on_samples: Callable[[Device, Sequence[Sample], datetime], list[Change]] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.evaluator, SampleObserver):
            self.on_samples = self.evaluator.observe_samples


class AlertEngine:
    """Evaluate rules for the hub; not thread-safe (call from the hub's one worker).

    ``rules``: all rules (disabled ones are ignored); ``rule_types``: the
    registry (built-ins plus plugins); ``devices``: what ``tick`` walks (the
    hub's registry cache); ``clock``: "now" for ``process`` (injected so tests
    and replays are deterministic).
    """

    def __init__(
        self,
        rules: Iterable[AlertRule],
        rule_types: Mapping[str, AlertRuleTypeSpec],
        alerts: AlertStore,
        devices: Callable[[], Iterable[Device]],
        clock: Callable[[], datetime] = utcnow,
        *,
        reopen_window: timedelta = DEFAULT_REOPEN_WINDOW,
    ) -> None:
        self._rule_types = dict(rule_types)
        self._alerts = alerts
        self._devices = devices
        self._clock = clock
        self.reopen_window = reopen_window
        self._compiled: dict[str, _Compiled] = {}
        self.rule_errors: dict[str, str] = {}
        self._escalation = EscalationTracker()
        self._unresumed: set[str] = set()
        # the rules in scope per what scopes look at (see _applicable)
        self._by_scope: dict[tuple[Any, ...], list[_Compiled]] = {}
        self._scope_by_id = False
        self.set_rules(rules)

    # ------------------------------------------------------------------ rules
    def set_rules(self, rules: Iterable[AlertRule]) -> None:
        """Replace the rule set (after an edit). Unchanged rules (same id and
        version) keep their evaluator, so their state (pending durations,
        hysteresis, rate windows) survives someone editing another rule."""
        compiled: dict[str, _Compiled] = {}
        self.rule_errors = {}
        for rule in rules:
            if not rule.enabled:
                continue
            old = self._compiled.get(rule.rule_id)
            if old is not None and old.rule.version == rule.version and old.rule == rule:
                compiled[rule.rule_id] = old
                continue
            try:
                evaluator = build_evaluator(rule, self._rule_types)
            except Exception as exc:  # noqa: BLE001 - a plugin's factory may raise anything
                self.rule_errors[rule.rule_id] = str(exc)
                log.warning("alert rule %s skipped: %s", rule.rule_id, exc)
                continue
            compiled[rule.rule_id] = _Compiled(rule, evaluator)
            self._unresumed.add(rule.rule_id)
        self._compiled = compiled
        self._by_scope.clear()
        self._scope_by_id = any(c.rule.scope.device_ids for c in compiled.values())

    @property
    def rules(self) -> dict[str, AlertRule]:
        """The enabled, valid rules the engine evaluates."""
        return {rule_id: c.rule for rule_id, c in self._compiled.items()}

    def resume(self, now: datetime) -> None:
        """What the first ``process`` or ``tick`` does anyway (see ``_resume``),
        for a caller that imports persisted state next and wants it to win."""
        self._resume(now)

    # ------------------------------------------------------------------ persisted state
    def export_state(self, device_id: str) -> dict[str, Any]:
        """The device's evaluator state, per rule: ``{rule_id: {"version": n,
        "state": ...}}`` (JSON). Rules whose evaluator is not
        :class:`Persistent`, or that hold nothing for the device, are left out."""
        out: dict[str, Any] = {}
        for rule_id, compiled in self._compiled.items():
            if isinstance(compiled.evaluator, Persistent):
                state = compiled.evaluator.export_state(device_id)
                if state is not None:
                    out[rule_id] = {"version": compiled.rule.version, "state": state}
        return out

    def import_state(self, device_id: str, saved: Mapping[str, Any]) -> None:
        """Put back what :meth:`export_state` wrote. A rule edited since (another
        version) starts afresh, as an edited rule does in a running engine;
        rules ``saved`` does not name keep what they hold (a fresh engine's
        assumption that an open alert is still active)."""
        for rule_id, compiled in self._compiled.items():
            entry = saved.get(rule_id)
            if (entry is not None and isinstance(compiled.evaluator, Persistent)
                    and entry.get("version") == compiled.rule.version):
                compiled.evaluator.import_state(device_id, entry.get("state"))

    def _resume(self, now: datetime) -> None:
        """Tell fresh evaluators which alerts are still open, so conditions that
        cleared while the hub was down still auto-resolve."""
        fresh, self._unresumed = self._unresumed & set(self._compiled), set()
        if not fresh:
            return
        query = AlertQuery(states=frozenset({AlertState.ACTIVE, AlertState.ACKNOWLEDGED}))
        for alert in self._alerts.list(query):
            compiled = self._compiled.get(alert.rule_id) if alert.rule_id in fresh else None
            if compiled is not None and isinstance(compiled.evaluator, Resumable):
                compiled.evaluator.assume_active(alert.device_id, now)

    def _applicable(self, device: Device) -> list[_Compiled]:
        """The rules whose scope takes ``device``, remembered per what a scope
        looks at (type, organization, tags, group; the id only when some rule
        names ids): a fleet has few such combinations, and matching every rule
        per message was a third of the engine's time at ingest."""
        if device.status is DeviceStatus.DECOMMISSIONED:
            return []
        key = (device.device_type, device.organization, device.tags,
               str(device.metadata.get("group", "")),
               device.device_id if self._scope_by_id else None)
        found = self._by_scope.get(key)
        if found is None:
            found = [c for c in self._compiled.values() if c.rule.scope.matches(device)]
            if len(self._by_scope) >= _SCOPE_CACHE_LIMIT:
                self._by_scope.clear()
            self._by_scope[key] = found
        return found

    # ------------------------------------------------------------------ entry points
    def process(self, device: Device, readings: Sequence[Reading]) -> list[AlertChange]:
        """Evaluate one device's new readings (time-ordered) against every rule in scope."""
        now = self._clock()
        self._resume(now)
        changes: list[AlertChange] = []
        for compiled in self._applicable(device):
            edges = compiled.evaluator.observe(device, readings, now)
            changes.extend(self._apply_all(compiled.rule, device, edges))
        return changes

    def process_samples(self, device: Device,
                        samples: Sequence[Sample]) -> list[AlertChange]:
        """``process`` on the device's messages as ingest decoded them (time and
        metrics by name, time-ordered): what the hub's writer holds. Rules whose
        evaluator is a :class:`SampleObserver` look their metric up per message;
        any other rule (composite, a plugin's) gets the same readings ``process``
        would have, built once for all of them. Same edges, same alerts."""
        now = self._clock()
        self._resume(now)
        changes: list[AlertChange] = []
        self._samples(device, samples, now, changes)
        return changes

    def process_batch(self, batch: Iterable[tuple[Device, Sequence[Sample]]],
                      failed: Callable[[Device, Exception], None]) -> list[AlertChange]:
        """:meth:`process_samples` for every device of one of the hub's write
        batches: "now" read and the fresh rules resumed once for the batch, not
        once per device (a batch holds about one message per device, so those
        were paid per message). A device whose evaluation raises is handed to
        ``failed`` and the others go on; the changes made before it stay."""
        now = self._clock()
        try:
            self._resume(now)
        except Exception:
            # the store failed: evaluate anyway, as the engine did device by
            # device before (only the first device's evaluation was lost then)
            log.exception("alert rules: the open alerts could not be read to resume the rules")
        changes: list[AlertChange] = []
        evaluate = self._samples
        for device, samples in batch:
            try:
                evaluate(device, samples, now, changes)
            except Exception as exc:  # noqa: BLE001 - a plugin's evaluator may raise anything
                failed(device, exc)
        return changes

    def _samples(self, device: Device, samples: Sequence[Sample], now: datetime,
                 changes: list[AlertChange]) -> None:
        readings: list[Reading] | None = None
        for compiled in self._applicable(device):
            on_samples = compiled.on_samples
            if on_samples is not None:
                edges = on_samples(device, samples, now)
            else:
                if readings is None:
                    readings = sample_readings(device.device_id, samples)
                edges = compiled.evaluator.observe(device, readings, now)
            if edges:
                changes.extend(self._apply_all(compiled.rule, device, edges))

    def tick(self, now: datetime | None = None) -> TickResult:
        """Let time pass: no-data rules fire or clear, escalation reminders fall due."""
        now = now or self._clock()
        self._resume(now)
        changes: list[AlertChange] = []
        for device in self._devices():
            for compiled in self._applicable(device):
                edges = compiled.evaluator.tick(device, now)
                changes.extend(self._apply_all(compiled.rule, device, edges))
        query = AlertQuery(states=frozenset({AlertState.ACTIVE}))
        reminders = self._escalation.due(self._alerts.list(query), self.rules, now)
        return TickResult(changes, reminders)

    # ------------------------------------------------------------------ applying edges
    def _apply_all(self, rule: AlertRule, device: Device,
                   edges: list[Change]) -> list[AlertChange]:
        out: list[AlertChange] = []
        for edge in edges:
            transition = Transition(device.device_id, rule.rule_id, edge.active, edge.value,
                                    edge.message, edge.at)
            change = self._raise(rule, transition) if edge.active else self._clear(rule, transition)
            if change is not None:
                out.append(change)
        return out

    def _message(self, rule: AlertRule, t: Transition) -> str:
        return f"{rule.name}: {t.message}"

    def _raise(self, rule: AlertRule, t: Transition) -> AlertChange | None:
        if self._alerts.open_alert_for(t.device_id, rule.rule_id) is not None:
            return None
        last = self._last_resolved(t.device_id, rule.rule_id)
        if (last is not None and last.resolved_at is not None
                and t.at - last.resolved_at <= self.reopen_window):
            reopened = last.reopen(t.value, self._message(rule, t), at=t.at)
            try:
                self._alerts.save(reopened)
                return AlertChange(ChangeKind.REOPENED, reopened, t)
            except ConcurrentModification:
                pass  # touched meanwhile: a new alert is the safe answer
        alert = Alert(device_id=t.device_id, rule_id=rule.rule_id, severity=rule.severity,
                      message=self._message(rule, t), value=t.value, created_at=t.at,
                      updated_at=t.at)
        self._alerts.add(alert)
        return AlertChange(ChangeKind.RAISED, alert, t)

    def _last_resolved(self, device_id: str, rule_id: str) -> Alert | None:
        resolved = [a for a in self._alerts.list(AlertQuery(
            device_id=device_id, states=frozenset({AlertState.RESOLVED})))
            if a.rule_id == rule_id and a.resolved_at is not None]
        return max(resolved, key=lambda a: a.resolved_at or a.updated_at, default=None)

    def _clear(self, rule: AlertRule, t: Transition) -> AlertChange | None:
        if not rule.auto_resolve:
            return None
        for _ in range(_SAVE_ATTEMPTS):
            current = self._alerts.open_alert_for(t.device_id, rule.rule_id)
            if current is None:
                return None
            try:
                resolved = current.resolve("system", at=max(t.at, current.updated_at))
                self._alerts.save(resolved)
            except (ConcurrentModification, IllegalTransition):
                continue  # someone acted at the same moment: look again
            return AlertChange(ChangeKind.RESOLVED, resolved, t,
                               notify=not current.is_snoozed(t.at))
        log.warning("could not auto-resolve %s/%s after %d attempts", t.device_id,
                    rule.rule_id, _SAVE_ATTEMPTS)
        return None
