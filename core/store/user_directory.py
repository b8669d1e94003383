"""SQL user directory: one row per person, versioned like preferences
(UPDATE ... WHERE version = read), so of two admins changing one person at
once exactly one wins and the other is told to read again."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.errors import ConcurrentModification
from core.model.roles import Role
from core.model.timeutil import utcnow
from core.model.users import UserAccount
from core.ports.user_directory import UserDirectory
from core.store.schema import users as _users


class SqlUserDirectory(UserDirectory):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, name: str) -> UserAccount | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(_users).where(_users.c.name == name)).mappings().first()
        return None if row is None else _account(row)

    def list(self, organization: str = "") -> list[UserAccount]:
        query = select(_users).order_by(_users.c.name)
        if organization:
            query = query.where(_users.c.organization == organization)
        with self._engine.connect() as conn:
            return [_account(r) for r in conn.execute(query).mappings()]

    def add(self, account: UserAccount) -> UserAccount:
        now = utcnow()
        stored = _with(account, created_at=account.created_at or now,
                       updated_at=account.updated_at or now, version=1)
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(_users).values(**_row(stored)))
        except IntegrityError:
            raise ConcurrentModification(f"user {account.name} already exists") from None
        return stored

    def save(self, account: UserAccount) -> UserAccount:
        stored = _with(account, updated_at=utcnow())
        values = _row(stored)
        del values["name"], values["created_by"], values["created_at"]
        with self._engine.begin() as conn:
            result = conn.execute(update(_users).where(
                _users.c.name == account.name, _users.c.version == account.version - 1
            ).values(**values))
        if result.rowcount != 1:
            raise ConcurrentModification(
                f"user {account.name} changed in the meantime (expected version "
                f"{account.version - 1}); read it again and retry")
        return stored


def _with(account: UserAccount, **changes: Any) -> UserAccount:
    return replace(account, **changes)


def _row(a: UserAccount) -> dict[str, Any]:
    return {"name": a.name, "role": a.role.value, "organization": a.organization,
            "disabled": a.disabled, "created_by": a.created_by, "created_at": a.created_at,
            "updated_by": a.updated_by, "updated_at": a.updated_at, "version": a.version}


def _account(row: Any) -> UserAccount:
    return UserAccount(name=row["name"], role=Role(row["role"]),
                       organization=row["organization"], disabled=bool(row["disabled"]),
                       created_by=row["created_by"], created_at=row["created_at"],
                       updated_by=row["updated_by"], updated_at=row["updated_at"],
                       version=int(row["version"]))
