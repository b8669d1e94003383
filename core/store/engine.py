"""Engine construction: one place that knows the per-dialect settings.

SQLite is the single-user default and PostgreSQL the shared team set-up; both
must behave the same to the repositories, so dialect quirks are settled here.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as exc_module
from sqlalchemy.engine import make_url

DB_FILENAME = "smartiot.db"
SQLITE_BUSY_TIMEOUT_MS = 10_000


def default_sqlite_url(data_dir: Path) -> str:
    """The caller resolves the platform data dir (platformdirs lives above core)."""
    return f"sqlite:///{(Path(data_dir) / DB_FILENAME).resolve()}"


def create_store_engine(
    url: str, *, connect_args: dict[str, Any] | None = None, **engine_kwargs: Any
) -> Engine:
    """Build an engine for any SQLAlchemy URL.

    A bare ``postgresql://`` would make SQLAlchemy pick psycopg2, which is not
    a dependency; psycopg 3 is, so the URL is rewritten to use it.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    ping_idle = not is_sqlite and "pool_pre_ping" not in engine_kwargs
    engine = create_engine(parsed, connect_args=dict(connect_args or {}), **engine_kwargs)
    if is_sqlite:
        event.listen(engine, "connect", _configure_sqlite_connection)
    elif ping_idle:
        event.listen(engine, "checkin", _note_idle)
        event.listen(engine, "checkout", _ping_if_idle)
    return engine


# A hub and several consoles share the server: a connection that died while it
# sat in the pool (a server restart) is replaced, not surfaced as an error in the
# UI. SQLAlchemy's ``pool_pre_ping`` asks the server on every checkout, a round
# trip before each of the hub's batches (10 a second) for connections that were
# in use a moment ago; this asks only after an idle spell. A connection that
# fails within that spell fails as it would in mid-transaction, and its callers
# (the hub's retrying writer, a console's next refresh) handle that already.
PING_AFTER_IDLE_S = 5.0
_IDLE_SINCE = "smartiot_idle_since"


def _note_idle(_dbapi_connection: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """A dead connection raises InvalidatePoolError: the pool connects this
    slot again and drops every connection older than now (a server restart
    took them all, as ``pool_pre_ping`` assumes too)."""
    idle_since = record.info.get(_IDLE_SINCE)
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
        return
    try:
        ping(dbapi_connection)
    except Exception as exc:
        raise exc_module.InvalidatePoolError(f"connection lost while idle: {exc}") from exc


def ping(dbapi_connection: Any) -> None:
    """A round trip, and the connection handed on idle, as the pool gives it
    out (the telemetry writer sends its ``COPY`` in autocommit from there);
    a seam for the tests that count pings."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT 1")
    finally:
        cursor.close()
    dbapi_connection.rollback()


def _enable_wal(cursor: Any) -> None:
    """Switch a new database to WAL, waiting out other openers.

    WAL is a property of the file, so this only matters the first time; but that
    switch needs an exclusive lock and SQLite reports "database is locked" at once
    instead of using the busy timeout — which a console and a hub opening the same
    fresh file (one of them migrating it) would otherwise hit."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the UI read while ingestion writes; NORMAL is durable enough under
    WAL (a power cut loses at most the last commits, never corrupts); the busy
    timeout turns writer contention between processes into waiting, not errors;
    foreign keys are off by default in SQLite and the schema relies on cascades.
    SQLite's default page cache (2 MB) stays: 128 and 512 MB inserted no faster
    at 10,000 devices (bench/sqlite_commit_bench.py) and cost every connection's
    memory (docs/scaling.md "Group commit")."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()
