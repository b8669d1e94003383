"""SQL store of the code-signing public keys a team's fleet trusts."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.errors import NotFound, ValidationError
from core.ports.signing_keys import TrustedKey, TrustedKeyStore
from core.store.schema import trusted_signing_keys as _keys


class SqlTrustedKeyStore(TrustedKeyStore):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, key: TrustedKey) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(_keys).values(
                    key_id=key.key_id, owner=key.owner, public_pem=key.public_pem.decode(),
                    added_by=key.added_by, added_at=key.added_at, revoked_by=key.revoked_by,
                    revoked_at=key.revoked_at, note=key.note))
        except IntegrityError:
            current = self.get(key.key_id)
            state = "revoked" if not current.active else "trusted"
            raise ValidationError(
                f"key {key.key_id} is already in the trust list ({state}, owner "
                f"{current.owner}); a revoked key is not trusted again") from None

    def get(self, key_id: str) -> TrustedKey:
        with self._engine.connect() as conn:
            row = conn.execute(select(_keys).where(_keys.c.key_id == key_id)).mappings().first()
        if row is None:
            raise NotFound(f"key {key_id!r} is not in the trust list")
        return _to_key(row)

    def list(self, *, include_revoked: bool = False) -> builtins.list[TrustedKey]:
        stmt = select(_keys).order_by(_keys.c.owner, _keys.c.key_id)
        if not include_revoked:
            stmt = stmt.where(_keys.c.revoked_at.is_(None))
        with self._engine.connect() as conn:
            return [_to_key(row) for row in conn.execute(stmt).mappings()]

    def revoke(self, key_id: str, by: str, at: datetime) -> TrustedKey:
        with self._engine.begin() as conn:
            done = conn.execute(update(_keys)
                                .where(_keys.c.key_id == key_id, _keys.c.revoked_at.is_(None))
                                .values(revoked_by=by, revoked_at=at)).rowcount
        key = self.get(key_id)  # NotFound for an unknown id
        if done != 1:
            raise ValidationError(f"key {key_id} was already revoked by {key.revoked_by}")
        return key


def _to_key(row: Any) -> TrustedKey:
    return TrustedKey(key_id=row["key_id"], owner=row["owner"],
                      public_pem=str(row["public_pem"]).encode(), added_by=row["added_by"],
                      added_at=row["added_at"], revoked_by=row["revoked_by"],
                      revoked_at=row["revoked_at"], note=row["note"] or "")
