"""The alerts use cases as a front end sees them (see core.ports.fleet_api).

One method per use case, no Actor parameter: the session belongs to one
person, and the service behind it checks that person's role, limits every
answer to their organization and writes the audit entry. Arguments and
results are plain domain types, so an HTTP client of the REST API can offer
the same Protocol to a remote console.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from core.model import Alert, AlertEvent, AlertState, Severity
from core.model.link import QuarantinedMessage
from core.model.rule import AlertRule

if TYPE_CHECKING:
    from core.ports.telemetry import Series
    from core.services.fleet_view import Page


@dataclass(frozen=True, slots=True)
class ActionResult:
    """One alert's outcome in a bulk action. ``error`` is ready to show a
    person; ``alert`` is the alert as stored afterwards (also after a refusal,
    so the page can show who won), None when it is gone or out of sight."""

    alert_id: str
    alert: Alert | None = None
    error: str = ""
    changed_by: str | None = None

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True, slots=True)
class RuleImport:
    """What an import did, rule by rule, for the front end to report."""

    added: list[AlertRule]
    updated: list[AlertRule]
    unchanged: list[AlertRule]


@dataclass(frozen=True, slots=True)
class AlertCounts:
    """``open``: active or acknowledged, by severity; ``attention``: active and
    not snoozed (core.services.fleet_health), which the page header, the
    navigation badge and the status bar show."""

    open: dict[Severity, int] = field(default_factory=dict)
    attention: dict[Severity, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlertDetail:
    """The selected alert with its rule (None when deleted since), the metric
    around the moment it was raised, and its history, oldest first (empty when
    neither the store nor the audit trail knows more than the alert's fields)."""

    alert: Alert
    rule: AlertRule | None = None
    metric: str = ""
    series: Series | None = None
    history: list[AlertEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class QuarantineListing:
    """Rejected device input, newest first, and how many were rejected per reason."""

    messages: list[QuarantinedMessage]
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class AlertFeatures:
    """What the backend behind the session offers, so a page can say "not
    available here" instead of failing on first use."""

    rules: bool
    quarantine: bool
    audited: bool


class AlertsApi(Protocol):
    def features(self) -> AlertFeatures: ...

    # ------------------------------------------------------------ alerts (reads)
    def list_alerts(self, *, states: frozenset[AlertState] = frozenset(),
                    severities: frozenset[Severity] = frozenset(), device_id: str = "",
                    since: datetime | None = None, limit: int | None = None,
                    next_token: str = "") -> Page[Alert]:
        """Newest first, one page; ``next`` of the result fetches the following one."""

    def get_alert(self, alert_id: str) -> Alert: ...

    def counts(self) -> AlertCounts: ...

    def detail(self, alert_id: str) -> AlertDetail: ...

    # ------------------------------------------------------------ alerts (commands)
    def acknowledge(self, alert_id: str, comment: str = "") -> Alert: ...

    def resolve(self, alert_id: str, comment: str = "") -> Alert: ...

    def snooze(self, alert_id: str, until: datetime, comment: str = "") -> Alert: ...

    def reopen(self, alert_id: str, comment: str = "") -> Alert: ...

    def acknowledge_many(self, alert_ids: Iterable[str],
                         comment: str = "") -> builtins.list[ActionResult]: ...

    def resolve_many(self, alert_ids: Iterable[str],
                     comment: str = "") -> builtins.list[ActionResult]: ...

    def snooze_many(self, alert_ids: Iterable[str], until: datetime,
                    comment: str = "") -> builtins.list[ActionResult]: ...

    def reopen_many(self, alert_ids: Iterable[str],
                    comment: str = "") -> builtins.list[ActionResult]: ...

    # ------------------------------------------------------------ rules
    def list_rules(self) -> builtins.list[AlertRule]: ...

    def get_rule(self, rule_id: str) -> AlertRule: ...

    def add_rule(self, rule: AlertRule) -> AlertRule: ...

    def save_rule(self, rule: AlertRule) -> AlertRule:
        """``rule`` carries the next version of the stored one."""

    def delete_rule(self, rule_id: str) -> None: ...

    def import_rules(self, rules: Iterable[AlertRule]) -> RuleImport: ...

    def add_default_rules(self) -> builtins.list[AlertRule]: ...

    # ------------------------------------------------------------ rejected device input
    def list_quarantine(self, *, reason: str | None = None, device_id: str | None = None,
                        limit: int = 500) -> QuarantineListing: ...
