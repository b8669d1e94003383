"""SQL alert store with optimistic locking on ``alerts.version``.

Every change also appends the alert's history (``alert_events``) in the same
transaction, so a history entry exists exactly for the changes that were
stored, whoever made them."""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import Engine, RowMapping, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from core.errors import ConcurrentModification, NotFound, ValidationError
from core.model import Alert, AlertEvent, AlertEventKind, AlertState, Severity, history_of
from core.ports.alerts import AlertQuery, AlertStore
from core.store.schema import AlertEventRow, AlertRow, DeviceRow, table_of

_alerts = table_of(AlertRow)
_events = table_of(AlertEventRow)


class SqlAlertStore(AlertStore):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def add(self, alert: Alert) -> None:
        try:
            with self._sessions.begin() as session:
                session.add(AlertRow(**_to_row(alert)))
                session.flush()  # the alert first: the event refers to it
                session.add_all(_event_row(e) for e in history_of(None, alert))
        except IntegrityError:
            raise ValidationError(f"alert {alert.alert_id} already exists") from None

    def get(self, alert_id: str) -> Alert:
        with self._sessions() as session:
            row = session.get(AlertRow, alert_id)
            if row is None:
                raise NotFound(f"alert {alert_id!r} does not exist")
            return _to_domain(row)

    def save(self, alert: Alert) -> None:
        """A conditional UPDATE, not read-check-write: the database decides the
        winner atomically, so two consoles (or processes) cannot both succeed."""
        expected = alert.version - 1
        values = _to_row(alert)
        del values["alert_id"]
        with self._engine.begin() as conn:
            before = (
                conn.execute(select(_alerts).where(_alerts.c.alert_id == alert.alert_id,
                                                   _alerts.c.version == expected))
                .mappings()
                .first()
            )
            result = conn.execute(
                update(_alerts)
                .where(_alerts.c.alert_id == alert.alert_id, _alerts.c.version == expected)
                .values(values)
            )
            if result.rowcount == 1:
                old = _to_domain(AlertRow(**dict(before))) if before is not None else None
                events = history_of(old, alert) if old is not None else []
                if events:
                    conn.execute(_events.insert(), [_event_values(e) for e in events])
                return
            current = (
                conn.execute(select(_alerts).where(_alerts.c.alert_id == alert.alert_id))
                .mappings()
                .first()
            )
        if current is None:
            raise NotFound(f"alert {alert.alert_id!r} does not exist")
        who = _last_changed_by(current)
        by = f" by {who}" if who else ""
        raise ConcurrentModification(
            f"alert {alert.alert_id} was changed{by} in the meantime (it is now "
            f"{current['state']}, version {current['version']}); reload it and try again",
            changed_by=who,
        )

    def list(self, query: AlertQuery | None = None) -> builtins.list[Alert]:
        q = query or AlertQuery()
        stmt = select(AlertRow).order_by(AlertRow.created_at.desc(), AlertRow.alert_id)
        if q.device_id:
            stmt = stmt.where(AlertRow.device_id == q.device_id)
        if q.device_ids:
            stmt = stmt.where(AlertRow.device_id.in_(sorted(q.device_ids)))
        if q.states:
            stmt = stmt.where(AlertRow.state.in_(sorted(s.value for s in q.states)))
        if q.severities:
            stmt = stmt.where(AlertRow.severity.in_(sorted(s.value for s in q.severities)))
        if q.since is not None:
            stmt = stmt.where(AlertRow.created_at >= q.since)
        if q.changed_since is not None:
            stmt = stmt.where(AlertRow.updated_at >= q.changed_since)
        if q.organization:
            stmt = stmt.where(AlertRow.device_id.in_(
                select(DeviceRow.device_id).where(DeviceRow.organization == q.organization)))
        if q.offset:
            stmt = stmt.offset(q.offset)
        if q.limit is not None:
            stmt = stmt.limit(q.limit)
        with self._sessions() as session:
            return [_to_domain(row) for row in session.scalars(stmt)]

    def open_alert_for(self, device_id: str, rule_id: str) -> Alert | None:
        stmt = (
            select(AlertRow)
            .where(
                AlertRow.device_id == device_id,
                AlertRow.rule_id == rule_id,
                AlertRow.state != AlertState.RESOLVED.value,
            )
            .order_by(AlertRow.created_at.desc())
            .limit(1)
        )
        with self._sessions() as session:
            row = session.scalars(stmt).first()
            return None if row is None else _to_domain(row)

    def counts_by_severity(self, *, open_only: bool = True) -> dict[Severity, int]:
        stmt = select(AlertRow.severity, func.count()).group_by(AlertRow.severity)
        if open_only:
            stmt = stmt.where(AlertRow.state != AlertState.RESOLVED.value)
        counts = dict.fromkeys(Severity, 0)
        with self._sessions() as session:
            for severity, n in session.execute(stmt):
                counts[Severity.parse(severity)] = int(n)
        return counts

    def open_counts_by_device(self) -> dict[str, int]:
        stmt = (
            select(AlertRow.device_id, func.count())
            .where(AlertRow.state != AlertState.RESOLVED.value)
            .group_by(AlertRow.device_id)
        )
        with self._sessions() as session:
            return {device_id: int(n) for device_id, n in session.execute(stmt)}


    def history(self, alert_id: str) -> builtins.list[AlertEvent]:
        stmt = (select(AlertEventRow).where(AlertEventRow.alert_id == alert_id)
                .order_by(AlertEventRow.id))
        with self._sessions() as session:
            return [
                AlertEvent(row.alert_id, row.at, AlertEventKind(row.kind), row.actor,
                           row.comment or "", dict(row.details or {}), row.version)
                for row in session.scalars(stmt)
            ]


def _event_values(e: AlertEvent) -> dict[str, Any]:
    return {"alert_id": e.alert_id, "at": e.at, "kind": e.kind.value, "actor": e.actor,
            "comment": e.comment, "details": e.details, "version": e.version}


def _event_row(e: AlertEvent) -> AlertEventRow:
    return AlertEventRow(**_event_values(e))


def _last_changed_by(row: RowMapping) -> str | None:
    """The domain keeps no "updated_by", so the person is inferred from the
    state the competing change left behind."""
    acknowledged_by: str | None = row["acknowledged_by"]
    resolved_by: str | None = row["resolved_by"]
    if row["state"] == AlertState.RESOLVED.value:
        return resolved_by or acknowledged_by
    if row["state"] == AlertState.ACKNOWLEDGED.value:
        return acknowledged_by
    return None


def _to_row(a: Alert) -> dict[str, Any]:
    return {
        "alert_id": a.alert_id,
        "device_id": a.device_id,
        "rule_id": a.rule_id,
        "severity": a.severity.value,
        "message": a.message,
        "value": a.value,
        "state": a.state.value,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
        "acknowledged_at": a.acknowledged_at,
        "acknowledged_by": a.acknowledged_by,
        "ack_comment": a.ack_comment,
        "resolved_at": a.resolved_at,
        "resolved_by": a.resolved_by,
        "snoozed_until": a.snoozed_until,
        "version": a.version,
        "resolve_comment": a.resolve_comment,
    }


def _to_domain(row: AlertRow) -> Alert:
    return Alert(
        alert_id=row.alert_id,
        device_id=row.device_id,
        rule_id=row.rule_id,
        severity=Severity.parse(row.severity),
        message=row.message,
        value=row.value,
        state=AlertState.parse(row.state),
        created_at=row.created_at,
        updated_at=row.updated_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        ack_comment=row.ack_comment,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        snoozed_until=row.snoozed_until,
        version=row.version,
        resolve_comment=row.resolve_comment,
    )
