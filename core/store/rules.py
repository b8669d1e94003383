"""SQL alert-rule store with optimistic locking on ``alert_rules.version``."""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from core.errors import ConcurrentModification, NotFound, ValidationError
from core.model.alert import Severity
from core.model.rule import AlertRule, RuleScope
from core.ports.hub import AlertRuleStore
from core.store.schema import AlertRuleRow, table_of

_rules = table_of(AlertRuleRow)


class SqlAlertRuleStore(AlertRuleStore):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def add(self, rule: AlertRule) -> None:
        try:
            with self._sessions.begin() as session:
                session.add(AlertRuleRow(**_to_row(rule)))
        except IntegrityError:
            raise ValidationError(f"alert rule {rule.rule_id} already exists") from None

    def get(self, rule_id: str) -> AlertRule:
        with self._sessions() as session:
            row = session.get(AlertRuleRow, rule_id)
            if row is None:
                raise NotFound(f"alert rule {rule_id!r} does not exist")
            return _to_domain(row)

    def save(self, rule: AlertRule) -> None:
        """Conditional UPDATE (``WHERE version = rule.version - 1``), so of two
        consoles editing the same rule exactly one save lands."""
        values = _to_row(rule)
        del values["rule_id"]
        with self._engine.begin() as conn:
            result = conn.execute(
                update(_rules)
                .where(_rules.c.rule_id == rule.rule_id, _rules.c.version == rule.version - 1)
                .values(values)
            )
            if result.rowcount == 1:
                return
            current = conn.scalar(select(_rules.c.version).where(_rules.c.rule_id == rule.rule_id))
        if current is None:
            raise NotFound(f"alert rule {rule.rule_id!r} does not exist")
        raise ConcurrentModification(
            f"alert rule {rule.name!r} ({rule.rule_id}) was changed in the meantime (it is now "
            f"version {current}, the edit was based on version {rule.version - 1}); "
            "reload it and try again"
        )

    def list(self, *, enabled_only: bool = False) -> builtins.list[AlertRule]:
        stmt = select(AlertRuleRow).order_by(AlertRuleRow.name, AlertRuleRow.rule_id)
        if enabled_only:
            stmt = stmt.where(AlertRuleRow.enabled.is_(True))
        with self._sessions() as session:
            return [_to_domain(row) for row in session.scalars(stmt)]

    def delete(self, rule_id: str) -> None:
        with self._engine.begin() as conn:
            if conn.execute(delete(_rules).where(_rules.c.rule_id == rule_id)).rowcount == 0:
                raise NotFound(f"alert rule {rule_id!r} does not exist")


def _to_row(r: AlertRule) -> dict[str, Any]:
    return {
        "rule_id": r.rule_id,
        "name": r.name,
        "rule_type": r.rule_type,
        "params": r.params,
        "severity": r.severity.value,
        "scope": r.scope.as_dict(),
        "enabled": r.enabled,
        "auto_resolve": r.auto_resolve,
        "escalate_after_s": r.escalate_after_s,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "version": r.version,
    }


def _to_domain(row: AlertRuleRow) -> AlertRule:
    return AlertRule(
        name=row.name,
        rule_type=row.rule_type,
        params=dict(row.params),
        severity=Severity.parse(row.severity),
        scope=RuleScope.from_dict(row.scope),
        enabled=row.enabled,
        auto_resolve=row.auto_resolve,
        escalate_after_s=row.escalate_after_s,
        rule_id=row.rule_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )
