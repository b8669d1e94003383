"""SQL shadow store: the shadow's own version is the optimistic lock."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from core.errors import ConcurrentModification, NotFound
from core.ports.hub import ShadowStore
from core.ports.shadows import ShadowDocument
from core.store.schema import ShadowRow, table_of

_shadows = table_of(ShadowRow)


class SqlShadowStore(ShadowStore):
    """Saves are decided by the database, never read-check-write: a first save
    is a plain INSERT (the primary key rejects a second creator) and later ones
    are ``UPDATE ... WHERE version = expected``, so of two writers holding the
    same version exactly one succeeds, across processes and hosts."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def get(self, device_id: str) -> ShadowDocument | None:
        with self._sessions() as session:
            row = session.get(ShadowRow, device_id)
            return None if row is None else _to_domain(row)

    def save(self, document: ShadowDocument, *, expected_version: int | None) -> None:
        values = _to_row(document)
        if expected_version is None:
            try:
                with self._engine.begin() as conn:
                    conn.execute(insert(_shadows).values(values))
                return
            except IntegrityError:
                raise ConcurrentModification(
                    f"the shadow of {document.device_id} was created by someone else in the "
                    "meantime; reload it and try again"
                ) from None
        del values["device_id"]
        with self._engine.begin() as conn:
            result = conn.execute(
                update(_shadows)
                .where(
                    _shadows.c.device_id == document.device_id,
                    _shadows.c.version == expected_version,
                )
                .values(values)
            )
            if result.rowcount == 1:
                return
            current = conn.scalar(
                select(_shadows.c.version).where(_shadows.c.device_id == document.device_id)
            )
        now = "it no longer exists" if current is None else f"it is now version {current}"
        raise ConcurrentModification(
            f"the shadow of {document.device_id} changed in the meantime (expected version "
            f"{expected_version}, {now}); reload it and try again"
        )

    def delete(self, device_id: str) -> None:
        with self._engine.begin() as conn:
            result = conn.execute(delete(_shadows).where(_shadows.c.device_id == device_id))
            if result.rowcount == 0:
                raise NotFound(f"device {device_id!r} has no shadow")


def _to_row(d: ShadowDocument) -> dict[str, Any]:
    return {
        "device_id": d.device_id,
        "desired": d.desired,
        "reported": d.reported,
        "version": d.version,
        "updated_at": d.updated_at,
    }


def _to_domain(row: ShadowRow) -> ShadowDocument:
    return ShadowDocument(
        device_id=row.device_id,
        desired=dict(row.desired),
        reported=dict(row.reported),
        version=row.version,
        updated_at=row.updated_at,
    )
