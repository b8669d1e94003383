"""SQL quarantine: messages the hub refused, newest first.

Bounded: rows older than ``max_age`` and all but the newest ``max_rows`` are
deleted as new rows come in (checked every ``CHECK_EVERY_ROWS`` rows or
``CHECK_EVERY_S`` seconds), so a flood of bad messages costs a bounded amount
of disk, whoever writes them."""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.orm import sessionmaker

from core.model.link import QUARANTINE_DETAIL_LIMIT, QUARANTINE_PAYLOAD_LIMIT, QuarantinedMessage
from core.model.timeutil import utcnow
from core.ports.hub import QuarantineStore
from core.store._sql import write_isolated
from core.store.schema import QuarantineRow, table_of

_q = table_of(QuarantineRow)
log = logging.getLogger(__name__)

# Column widths from the schema. A quarantined message is malformed by
# definition, so its fields are clipped rather than allowed to fail the insert
# (PostgreSQL enforces VARCHAR lengths; SQLite does not).
_DEVICE_ID_MAX = 128
_REASON_MAX = 64
_TOPIC_MAX = 4096

DEFAULT_MAX_AGE = timedelta(days=30)
DEFAULT_MAX_ROWS = 100_000
CHECK_EVERY_ROWS = 1000
CHECK_EVERY_S = 60.0


class SqlQuarantineStore(QuarantineStore):
    def __init__(self, engine: Engine, *, max_age: timedelta = DEFAULT_MAX_AGE,
                 max_rows: int = DEFAULT_MAX_ROWS) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.max_age = max_age
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._rows_since_check = 0
        self._checked_at = time.monotonic()
        self.skipped = 0  # rows the database refused (see write_isolated)

    def add_many(self, messages: Sequence[QuarantinedMessage]) -> None:
        """One executemany in one transaction; ``message_id`` is assigned by
        the database (any value on the input is ignored)."""
        if not messages:
            return
        rows = [_to_row(m) for m in messages]
        self.skipped += write_isolated(self._insert, rows, itemgetter("reason"), "quarantine",
                                       log)
        with self._lock:
            self._rows_since_check += len(messages)
            due = (self._rows_since_check >= CHECK_EVERY_ROWS
                   or time.monotonic() - self._checked_at >= CHECK_EVERY_S)
            if due:
                self._rows_since_check = 0
                self._checked_at = time.monotonic()
        if due:
            self.enforce_retention()

    def _insert(self, rows: Sequence[dict[str, Any]]) -> None:
        with self._engine.begin() as conn:
            conn.execute(insert(_q), list(rows))

    def enforce_retention(self, now: datetime | None = None) -> int:
        """Delete rows past ``max_age`` and beyond the newest ``max_rows``."""
        deleted = self.purge_before((now or utcnow()) - self.max_age)
        with self._engine.begin() as conn:
            cutoff = conn.scalar(select(_q.c.id).order_by(_q.c.id.desc())
                                 .offset(self.max_rows).limit(1))
            if cutoff is not None:
                deleted += int(conn.execute(delete(_q).where(_q.c.id <= cutoff)).rowcount)
        return deleted

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


def _text(value: str, limit: int) -> str:
    """Storable text: no NUL (PostgreSQL refuses it in text), no lone
    surrogates (no encoding can write them), at most ``limit`` characters."""
    if not (value.isascii() and "\x00" not in value):
        value = value[:limit * 6].encode("utf-8", "backslashreplace").decode("utf-8")
        value = value.replace("\x00", "\\x00")
    return value[:limit]


def _to_row(m: QuarantinedMessage) -> dict[str, Any]:
    return {
        "received_at": m.received_at,
        "topic": _text(m.topic, _TOPIC_MAX),
        "device_id": None if m.device_id is None else _text(m.device_id, _DEVICE_ID_MAX),
        "reason": _text(m.reason, _REASON_MAX),
        "detail": _text(m.detail, QUARANTINE_DETAIL_LIMIT),
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
