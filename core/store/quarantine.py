"""SQL quarantine: messages the hub refused, newest first."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.orm import sessionmaker

from core.model.link import QUARANTINE_PAYLOAD_LIMIT, QuarantinedMessage
from core.ports.hub import QuarantineStore
from core.store.schema import QuarantineRow, table_of

_q = table_of(QuarantineRow)

# Column widths from the schema. A quarantined message is malformed by
# definition, so its fields are clipped rather than allowed to fail the insert
# (PostgreSQL enforces VARCHAR lengths; SQLite does not).
_DEVICE_ID_MAX = 128
_REASON_MAX = 64


class SqlQuarantineStore(QuarantineStore):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def add_many(self, messages: Sequence[QuarantinedMessage]) -> None:
        """One executemany in one transaction; ``message_id`` is assigned by
        the database (any value on the input is ignored)."""
        if not messages:
            return
        with self._engine.begin() as conn:
            conn.execute(insert(_q), [_to_row(m) for m in messages])

    def list(
        self, *, limit: int = 500, reason: str | None = None, device_id: str | None = None
    ) -> builtins.list[QuarantinedMessage]:
        stmt = (
            select(QuarantineRow)
            .order_by(QuarantineRow.received_at.desc(), QuarantineRow.id.desc())
            .limit(limit)
        )
        if reason is not None:
            stmt = stmt.where(QuarantineRow.reason == reason)
        if device_id is not None:
            stmt = stmt.where(QuarantineRow.device_id == device_id)
        with self._sessions() as session:
            return [_to_domain(row) for row in session.scalars(stmt)]

    def counts_by_reason(self) -> dict[str, int]:
        stmt = select(_q.c.reason, func.count()).group_by(_q.c.reason)
        with self._engine.connect() as conn:
            return {reason: int(n) for reason, n in conn.execute(stmt)}

    def purge_before(self, cutoff: datetime) -> int:
        with self._engine.begin() as conn:
            return int(conn.execute(delete(_q).where(_q.c.received_at < cutoff)).rowcount)


def _to_row(m: QuarantinedMessage) -> dict[str, Any]:
    return {
        "received_at": m.received_at,
        "topic": m.topic,
        "device_id": None if m.device_id is None else m.device_id[:_DEVICE_ID_MAX],
        "reason": m.reason[:_REASON_MAX],
        "detail": m.detail,
        "payload": bytes(m.payload[:QUARANTINE_PAYLOAD_LIMIT]),
    }


def _to_domain(row: QuarantineRow) -> QuarantinedMessage:
    return QuarantinedMessage(
        topic=row.topic,
        reason=row.reason,
        detail=row.detail,
        payload=bytes(row.payload),
        device_id=row.device_id,
        received_at=row.received_at,
        message_id=row.id,
    )
