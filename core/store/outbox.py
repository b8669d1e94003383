"""Transactional outbox: user actions persisted before they are confirmed.

Every action gets an idempotency key chosen by the caller (e.g. a UUID made
when the button was pressed), so a double click, a retry after a crash or two
consoles replaying the same queue all collapse into one row, and the sender
can pass the key on so the receiving side applies the action exactly once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import sessionmaker

from core.errors import NotFound, ValidationError
from core.model.timeutil import require_aware, utcnow
from core.store._sql import insert_ignoring_duplicates
from core.store.schema import OutboxRow, table_of

_outbox = table_of(OutboxRow)

BASE_DELAY = timedelta(seconds=1)
MAX_DELAY = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    idempotency_key: str
    kind: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    applied_at: datetime | None
    last_error: str | None

    @property
    def is_applied(self) -> bool:
        return self.applied_at is not None


def backoff(attempts: int) -> timedelta:
    """Exponential (1 s, 2 s, 4 s, ...) capped at 15 minutes: an unreachable
    backend is retried soon after a blip but not hammered during an outage."""
    delay: timedelta = BASE_DELAY * (2 ** max(attempts - 1, 0))
    return min(delay, MAX_DELAY)


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        idempotency_key: str,
        *,
        now: datetime | None = None,
    ) -> OutboxMessage:
        """Insert-or-nothing on the key (atomic, so concurrent enqueues of the
        same action cannot both land). Re-using a key for a *different* action
        is a caller bug and is refused rather than silently dropped."""
        if not idempotency_key or not kind:
            raise ValidationError("an outbox message needs a kind and an idempotency key")
        at = require_aware(now, "now") if now else utcnow()
        with self._engine.begin() as conn:
            conn.execute(
                insert_ignoring_duplicates(conn.dialect.name, _outbox).values(
                    idempotency_key=idempotency_key,
                    kind=kind,
                    payload=payload,
                    created_at=at,
                    attempts=0,
                    next_attempt_at=at,
                )
            )
        message = self.get(idempotency_key)
        if message.kind != kind or _canonical(message.payload) != _canonical(payload):
            raise ValidationError(
                f"idempotency key {idempotency_key!r} was already used for a different "
                f"{message.kind} action"
            )
        return message

    def get(self, idempotency_key: str) -> OutboxMessage:
        with self._sessions() as session:
            row = session.scalar(
                select(OutboxRow).where(OutboxRow.idempotency_key == idempotency_key)
            )
            if row is None:
                raise NotFound(f"no outbox message with key {idempotency_key!r}")
            return _to_message(row)

    def due(self, now: datetime | None = None, *, limit: int = 100) -> list[OutboxMessage]:
        """Unapplied messages whose retry time has come, oldest first (actions
        on the same record must be applied in the order the user made them)."""
        at = now or utcnow()
        stmt = (
            select(OutboxRow)
            .where(OutboxRow.applied_at.is_(None), OutboxRow.next_attempt_at <= at)
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        with self._sessions() as session:
            return [_to_message(row) for row in session.scalars(stmt)]

    def mark_applied(self, message_id: int, *, at: datetime | None = None) -> None:
        self._update(message_id, applied_at=at or utcnow(), last_error=None)

    def mark_failed(self, message_id: int, error: str, *, now: datetime | None = None) -> datetime:
        """Counts the attempt and schedules the next one; returns when that is."""
        at = now or utcnow()
        with self._sessions.begin() as session:
            row = session.get(OutboxRow, message_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no outbox message with id {message_id}")
            row.attempts += 1
            row.last_error = error
            row.next_attempt_at = at + backoff(row.attempts)
            return row.next_attempt_at

    def pending_count(self) -> int:
        with self._sessions() as session:
            stmt = select(func.count()).where(OutboxRow.applied_at.is_(None))
            return int(session.scalar(stmt) or 0)

    def _update(self, message_id: int, **values: Any) -> None:
        with self._engine.begin() as conn:
            result = conn.execute(update(_outbox).where(_outbox.c.id == message_id).values(values))
            if result.rowcount == 0:
                raise NotFound(f"no outbox message with id {message_id}")


def _canonical(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def _to_message(row: OutboxRow) -> OutboxMessage:
    return OutboxMessage(
        id=row.id,
        idempotency_key=row.idempotency_key,
        kind=row.kind,
        payload=dict(row.payload),
        created_at=row.created_at,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        applied_at=row.applied_at,
        last_error=row.last_error,
    )
