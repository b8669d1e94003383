"""SQL side of idempotency keys (core.ports.idempotency): the primary key
``(caller, idem_key)`` makes the claim one INSERT that only one of two
simultaneous requests can win; taking over an expired or abandoned claim is one
UPDATE conditioned on the row still being the one that was read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from core.ports.idempotency import IdempotencyRecord, IdempotencyStore
from core.store.schema import idempotency_keys as _keys


class SqlIdempotencyStore(IdempotencyStore):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def claim(self, record: IdempotencyRecord, now: datetime) -> IdempotencyRecord | None:
        values = {"caller": record.caller, "idem_key": record.key, "request": record.request,
                  "body_hash": record.body_hash, "status": None, "response": None,
                  "created_at": record.created_at, "locked_until": record.locked_until,
                  "expires_at": record.expires_at}
        # A holder can be released between our INSERT and our read: try again
        # (a few times; each round trip either inserts or reads a holder).
        for _ in range(3):
            try:
                with self._engine.begin() as conn:
                    conn.execute(insert(_keys).values(**values))
                return None
            except IntegrityError:
                pass
            held = self.get(record.caller, record.key)
            if held is None:
                continue
            stale = held.expires_at <= now or (held.in_progress and held.locked_until <= now)
            if not stale:
                return held
            with self._engine.begin() as conn:
                won = conn.execute(update(_keys).where(
                    _keys.c.caller == record.caller, _keys.c.idem_key == record.key,
                    _keys.c.created_at == held.created_at,
                    or_(_keys.c.expires_at <= now,
                        _keys.c.status.is_(None) & (_keys.c.locked_until <= now)),
                ).values(**values)).rowcount == 1
            if won:
                return None
        return self.get(record.caller, record.key) or record

    def complete(self, caller: str, key: str, status: int, response: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(_keys).where(_keys.c.caller == caller, _keys.c.idem_key == key)
                         .values(status=status, response=response))

    def release(self, caller: str, key: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(_keys).where(_keys.c.caller == caller, _keys.c.idem_key == key,
                                             _keys.c.status.is_(None)))

    def get(self, caller: str, key: str) -> IdempotencyRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(_keys).where(_keys.c.caller == caller,
                                                   _keys.c.idem_key == key)).mappings().first()
        return None if row is None else _record(row)

    def purge(self, now: datetime) -> int:
        """Drop expired answers (the API calls this now and then)."""
        with self._engine.begin() as conn:
            return int(conn.execute(delete(_keys).where(_keys.c.expires_at <= now)).rowcount)


def _record(row: Any) -> IdempotencyRecord:
    return IdempotencyRecord(caller=row["caller"], key=row["idem_key"], request=row["request"],
                             body_hash=row["body_hash"], created_at=row["created_at"],
                             expires_at=row["expires_at"], locked_until=row["locked_until"],
                             status=row["status"], response=row["response"] or "")
