"""Append-only, hash-chained audit log.

Each entry's hash covers the previous entry's hash and the entry's canonical
JSON, so editing, deleting or re-ordering any row breaks every hash after it;
``verify`` finds the first break. This makes tampering detectable, not
impossible: an attacker with write access could rewrite the whole chain, so
the head hash should also be exported elsewhere (e.g. in backups or logs).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from core.errors import ConcurrentModification, ValidationError
from core.model.timeutil import utcnow
from core.store.schema import AuditRow, table_of

GENESIS = "0" * 64
_APPEND_RETRIES = 5
_VERIFY_PAGE = 1000

_audit = table_of(AuditRow)
_INSERTED = ("ts", "actor", "action", "subject", "details", "prev_hash", "hash")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    ts: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


def entry_hash(
    prev_hash: str, ts: datetime, actor: str, action: str, subject: str, details: dict[str, Any]
) -> str:
    """``seq`` is left out: it is assigned by the database after hashing."""
    body = json.dumps(
        {
            "ts": ts.isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def append(
        self, actor: str, action: str, subject: str, details: dict[str, Any] | None = None
    ) -> AuditEntry:
        """Appends are serialised (a write lock taken before the head is read) so
        concurrent writers queue instead of starving each other with retries.
        The UNIQUE prev_hash stays as the backstop: were two writers ever to
        read the same head, one insert fails and is retried, and the chain
        cannot fork."""
        if not actor or not action:
            raise ValidationError("an audit entry needs an actor and an action")
        details = json.loads(json.dumps(details or {}, allow_nan=False))
        for _ in range(_APPEND_RETRIES):
            try:
                with self._engine.begin() as conn:
                    _lock_for_append(conn)
                    head = conn.scalar(select(_audit.c.hash).order_by(_audit.c.seq.desc()).limit(1))
                    prev = head or GENESIS
                    # Both backends keep microseconds, so this hashes what is read back.
                    ts = utcnow()
                    digest = entry_hash(prev, ts, actor, action, subject, details)
                    entry = AuditEntry(0, ts, actor, action, subject, details, prev, digest)
                    values = {f: getattr(entry, f) for f in _INSERTED}
                    seq = conn.execute(insert(_audit).values(values).returning(_audit.c.seq))
                    return replace(entry, seq=int(seq.scalar_one()))
            except IntegrityError:
                continue
        raise ConcurrentModification("the audit log is too busy to append; try again")

    def entries(self, *, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        stmt = select(AuditRow).where(AuditRow.seq > after_seq).order_by(AuditRow.seq).limit(limit)
        with self._sessions() as session:
            return [_to_entry(row) for row in session.scalars(stmt)]

    def verify(self) -> int | None:
        """Walk the chain in ``seq`` order; return the first seq whose link or
        hash does not check out, or None if the whole chain is intact."""
        prev, after = GENESIS, 0
        while page := self.entries(after_seq=after, limit=_VERIFY_PAGE):
            for e in page:
                expected = entry_hash(prev, e.ts, e.actor, e.action, e.subject, e.details)
                if e.prev_hash != prev or e.hash != expected:
                    return e.seq
                prev, after = e.hash, e.seq
        return None


def _lock_for_append(conn: Connection) -> None:
    """SQLite: take the database write lock up front (the busy timeout then
    queues writers). PostgreSQL: a table lock mode that conflicts with itself
    but not with readers; the name resolves through search_path."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE")


def _to_entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        ts=row.ts,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        details=dict(row.details),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
