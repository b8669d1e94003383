"""Small SQL helpers shared by the repositories.

Upserts and duplicate-ignoring inserts are written as ``INSERT ... ON
CONFLICT`` because that is atomic under concurrency (a hub and consoles share
one database); read-then-write emulations race. SQLite and PostgreSQL spell it
the same way, so those two are supported; other backends fail loudly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.sql.dml import Insert

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")

# Stays well below SQLite's (32766) and PostgreSQL's (65535) bound-parameter limits.
CHUNK = 500


def chunked(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def dialect_insert(dialect_name: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    # Each dialect imported for its own URL: the PostgreSQL one (with its
    # drivers' modules) cost a console on SQLite ~0.2 s of CPU at start-up.
    if dialect_name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    if dialect_name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    raise NotImplementedError(
        f"the store supports SQLite and PostgreSQL; {dialect_name!r} has no ON CONFLICT clause"
    )


def insert_ignoring_duplicates(dialect_name: str, table: Table) -> Insert:
    return dialect_insert(dialect_name, table).on_conflict_do_nothing()


def on_conflict_update(
    stmt: postgresql.Insert | sqlite.Insert,
    set_: Mapping[str, Any] | None = None,
    where: Any = None,
) -> Insert:
    """``ON CONFLICT (primary key) DO UPDATE``; by default every non-key column
    takes the incoming (``excluded``) value."""
    table = stmt.table
    assert isinstance(table, Table)
    keys = [c.name for c in table.primary_key.columns]
    if set_ is None:
        set_ = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    return stmt.on_conflict_do_update(index_elements=keys, set_=set_, where=where)


def upsert(dialect_name: str, table: Table) -> Insert:
    """Insert or replace every non-key column, atomically."""
    return on_conflict_update(dialect_insert(dialect_name, table))


def write_isolated(write: Any, rows: Sequence[T], name: Any, what: str,
                   log: Any) -> int:
    """``write(rows)`` in one transaction; if the database refuses a *value*
    (out of range, a constraint, text it cannot encode), each row again on its
    own, so one bad row costs the others nothing. Anything else (the database
    unreachable or locked, a missing table) is raised as it is: the caller
    retries the whole batch later. Returns how many rows were skipped."""
    try:
        write(rows)
        return 0
    except Exception as exc:
        if len(rows) <= 1 or not _refused_value(exc):
            raise
    skipped = []
    for row in rows:
        try:
            write([row])
        except Exception as exc:
            if not _refused_value(exc):
                raise
            skipped.append(f"{name(row)} ({type(exc).__name__})")
    if skipped:
        log.error("%s: %d row(s) refused by the database and skipped: %s", what,
                  len(skipped), ", ".join(skipped[:10]))
    return len(skipped)


def _refused_value(exc: BaseException) -> bool:
    from sqlalchemy.exc import DataError, IntegrityError, StatementError

    values = (DataError, IntegrityError, OverflowError, ValueError, TypeError)
    if isinstance(exc, StatementError) and not isinstance(exc, DataError | IntegrityError):
        return isinstance(exc.orig, values)
    return isinstance(exc, values)
