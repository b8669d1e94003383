"""SQL side of sign-in: password hashes in the ``users`` rows, refresh tokens
(as SHA-256) in ``refresh_tokens``. Marking a token used is one conditional
UPDATE, so of two requests presenting the same token exactly one rotates it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from core.errors import NotFound
from core.ports.accounts import AccountStore, RefreshRecord
from core.store.schema import refresh_tokens as _tokens
from core.store.schema import users as _users


class SqlAccountStore(AccountStore):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def password_hash(self, name: str) -> str | None:
        with self._engine.connect() as conn:
            value = conn.execute(select(_users.c.password_hash)
                                 .where(_users.c.name == name)).scalar()
        return None if value is None else str(value)

    def set_password_hash(self, name: str, encoded: str, changed_at: datetime) -> None:
        with self._engine.begin() as conn:
            result = conn.execute(update(_users).where(_users.c.name == name).values(
                password_hash=encoded, password_changed_at=changed_at))
        if result.rowcount != 1:
            raise NotFound(f"user {name} does not exist")

    def add_refresh(self, record: RefreshRecord) -> None:
        with self._engine.begin() as conn:
            conn.execute(insert(_tokens).values(
                token_hash=record.token_hash, user_name=record.user, family=record.family,
                issued_at=record.issued_at, expires_at=record.expires_at,
                used_at=record.used_at, revoked_at=record.revoked_at,
                client=record.client[:128]))

    def use_refresh(self, token_hash: str, now: datetime) -> tuple[RefreshRecord | None, bool]:
        with self._engine.begin() as conn:
            won = conn.execute(update(_tokens).where(
                _tokens.c.token_hash == token_hash, _tokens.c.used_at.is_(None),
                _tokens.c.revoked_at.is_(None)).values(used_at=now)).rowcount == 1
            row = conn.execute(select(_tokens).where(_tokens.c.token_hash == token_hash)
                               ).mappings().first()
        return (None if row is None else _record(row)), won

    def revoke_family(self, family: str, now: datetime) -> int:
        with self._engine.begin() as conn:
            return int(conn.execute(update(_tokens).where(
                _tokens.c.family == family, _tokens.c.revoked_at.is_(None)
            ).values(revoked_at=now)).rowcount)

    def revoke_user(self, name: str, now: datetime) -> int:
        with self._engine.begin() as conn:
            return int(conn.execute(update(_tokens).where(
                _tokens.c.user_name == name, _tokens.c.revoked_at.is_(None)
            ).values(revoked_at=now)).rowcount)


def _record(row: Any) -> RefreshRecord:
    return RefreshRecord(token_hash=row["token_hash"], user=row["user_name"],
                         family=row["family"], issued_at=row["issued_at"],
                         expires_at=row["expires_at"], used_at=row["used_at"],
                         revoked_at=row["revoked_at"], client=row["client"])
