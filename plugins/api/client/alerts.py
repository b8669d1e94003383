"""AlertsApi over the REST API (core.ports.fleet_api.alerts).

Bulk actions are sent alert by alert, as the local service does them: one
alert someone else already handled does not stop the rest, and each result
says what happened to its alert. Rule import, default rules and the
quarantine have no routes yet (features() tells the page so).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from core.errors import ConcurrentModification, NotFound, SmartIotError
from core.model import Alert, AlertState, Severity
from core.model.rule import AlertRule
from core.ports.fleet_api.alerts import (
    ActionResult,
    AlertCounts,
    AlertDetail,
    AlertFeatures,
    QuarantineListing,
    RuleImport,
)
from core.services.alerting.service import DETAIL_WINDOW, describe_state
from core.services.fleet_view import Page
from plugins.api.client import decode
from plugins.api.client.devices import if_match, seg
from plugins.api.client.transport import HttpTransport


def rule_body(rule: AlertRule) -> dict[str, Any]:
    return {"name": rule.name, "rule_type": rule.rule_type, "params": rule.params,
            "severity": rule.severity.value, "enabled": rule.enabled,
            "auto_resolve": rule.auto_resolve, "device_types": sorted(rule.scope.device_types),
            "tags": sorted(rule.scope.tags), "device_ids": sorted(rule.scope.device_ids)}


class HttpAlerts:
    def __init__(self, http: HttpTransport) -> None:
        self._http = http

    def features(self) -> AlertFeatures:
        return AlertFeatures(rules=True, quarantine=True, audited=True)

    # ------------------------------------------------------------ reads
    def list_alerts(self, *, states: frozenset[AlertState] = frozenset(),
                    severities: frozenset[Severity] = frozenset(), device_id: str = "",
                    since: datetime | None = None, limit: int | None = None,
                    next_token: str = "") -> Page[Alert]:
        d = self._http.get("/alerts", {"state": [s.value for s in states],
                                       "severity": [s.value for s in severities],
                                       "device_id": device_id, "limit": limit,
                                       "next": next_token}).data
        items = [decode.alert(a) for a in d["items"]]
        if since is not None:  # no query parameter yet: raised at or after, as the store does
            items = [a for a in items if a.created_at >= since]
        return Page(items, d.get("next") or "")

    def get_alert(self, alert_id: str) -> Alert:
        return decode.alert(self._http.get(f"/alerts/{seg(alert_id)}").data)

    def counts(self) -> AlertCounts:
        d = self._http.get("/alerts/counts").data
        return AlertCounts({Severity(k): int(v) for k, v in d["open"].items()},
                           {Severity(k): int(v) for k, v in d["attention"].items()})

    def detail(self, alert_id: str) -> AlertDetail:
        current = self.get_alert(alert_id)
        try:
            rule: AlertRule | None = self.get_rule(current.rule_id)
        except NotFound:
            rule = None
        # The metric around the moment it was raised, as the in-process service
        # answers it; without it the panel said "No telemetry stored" for every
        # alert of a console on the REST API.
        metric = str(rule.params.get("metric") or "") if rule is not None else ""
        try:
            d = self._http.get(f"/devices/{seg(current.device_id)}/history", {
                "metric": metric,
                "start": (current.created_at - DETAIL_WINDOW).isoformat(),
                "end": (current.created_at + DETAIL_WINDOW).isoformat()}).data
        except SmartIotError:
            return AlertDetail(current, rule, metric)  # the alert still shows
        found = [decode.series(s) for s in d["series"]]
        series = next((s for s in found if s.metric == metric), None) if metric \
            else (found[0] if found else None)
        return AlertDetail(current, rule, metric or (series.metric if series else ""), series)

    # ------------------------------------------------------------ commands
    def _act(self, alert_id: str, verb: str, body: dict[str, Any]) -> Alert:
        return decode.alert(self._http.post(f"/alerts/{seg(alert_id)}/{verb}", body).data)

    def acknowledge(self, alert_id: str, comment: str = "") -> Alert:
        return self._act(alert_id, "acknowledge", {"comment": comment})

    def resolve(self, alert_id: str, comment: str = "") -> Alert:
        return self._act(alert_id, "resolve", {"comment": comment})

    def snooze(self, alert_id: str, until: datetime, comment: str = "") -> Alert:
        return self._act(alert_id, "snooze", {"until": until.isoformat(), "comment": comment})

    def reopen(self, alert_id: str, comment: str = "") -> Alert:
        return self._act(alert_id, "reopen", {"comment": comment})

    def _each(self, alert_ids: Iterable[str], action: Callable[[str], Alert]
              ) -> builtins.list[ActionResult]:
        results: builtins.list[ActionResult] = []
        for alert_id in alert_ids:
            try:
                results.append(ActionResult(alert_id, action(alert_id)))
            except SmartIotError as exc:
                results.append(self._refused(alert_id, exc))
        return results

    def _refused(self, alert_id: str, exc: SmartIotError) -> ActionResult:
        """Phrased from the stored alert, which knows who and when, as the local
        service phrases a refusal (someone else got there first)."""
        try:
            current: Alert | None = self.get_alert(alert_id)
        except SmartIotError:
            current = None
        if not isinstance(exc, ConcurrentModification) or current is None \
                or current.state is AlertState.ACTIVE:
            return ActionResult(alert_id, current, str(exc))
        who = current.acknowledged_by if current.state is AlertState.ACKNOWLEDGED \
            else current.resolved_by
        return ActionResult(alert_id, current, describe_state(current), who)

    def acknowledge_many(self, alert_ids: Iterable[str],
                         comment: str = "") -> builtins.list[ActionResult]:
        return self._each(alert_ids, lambda a: self.acknowledge(a, comment))

    def resolve_many(self, alert_ids: Iterable[str],
                     comment: str = "") -> builtins.list[ActionResult]:
        return self._each(alert_ids, lambda a: self.resolve(a, comment))

    def snooze_many(self, alert_ids: Iterable[str], until: datetime,
                    comment: str = "") -> builtins.list[ActionResult]:
        return self._each(alert_ids, lambda a: self.snooze(a, until, comment))

    def reopen_many(self, alert_ids: Iterable[str],
                    comment: str = "") -> builtins.list[ActionResult]:
        return self._each(alert_ids, lambda a: self.reopen(a, comment))

    # ------------------------------------------------------------ rules
    def list_rules(self) -> builtins.list[AlertRule]:
        return [decode.rule(r) for r in self._http.get("/alerts/rules").data["items"]]

    def get_rule(self, rule_id: str) -> AlertRule:
        for rule in self.list_rules():
            if rule.rule_id == rule_id:
                return rule
        raise NotFound(f"rule {rule_id} does not exist")

    def add_rule(self, rule: AlertRule) -> AlertRule:
        return decode.rule(self._http.post("/alerts/rules", rule_body(rule)).data)

    def save_rule(self, rule: AlertRule) -> AlertRule:
        """``rule`` carries the next version of the stored one (If-Match: the stored)."""
        return decode.rule(self._http.put(f"/alerts/rules/{seg(rule.rule_id)}",
                                          rule_body(rule),
                                          headers=if_match(rule.version - 1)).data)

    def delete_rule(self, rule_id: str) -> None:
        self._http.delete(f"/alerts/rules/{seg(rule_id)}")

    def import_rules(self, rules: Iterable[AlertRule]) -> RuleImport:
        d = self._http.post("/alerts/rules/import", {"rules": [
            {**rule_body(r), "rule_id": r.rule_id} for r in rules]}).data
        return RuleImport([decode.rule(r) for r in d["added"]],
                          [decode.rule(r) for r in d["updated"]],
                          [decode.rule(r) for r in d["unchanged"]])

    def add_default_rules(self) -> builtins.list[AlertRule]:
        d = self._http.post("/alerts/rules/defaults").data
        return [decode.rule(r) for r in d["items"]]

    def list_quarantine(self, *, reason: str | None = None, device_id: str | None = None,
                        limit: int = 500) -> QuarantineListing:
        d = self._http.get("/alerts/quarantine", {"reason": reason or "",
                                                  "device_id": device_id or "",
                                                  "limit": limit}).data
        return QuarantineListing([decode.quarantined(m) for m in d["items"]],
                                 {str(k): int(v) for k, v in d["counts"].items()})
