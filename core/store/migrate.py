"""Run the store's Alembic migrations from code.

The console and the hub migrate at start-up, so there is no alembic.ini to
ship or locate: the configuration is built here, pointing at the scripts that
live inside this package.

Alembic itself is imported only when a migration runs. Almost every start-up
finds the schema already at head, and importing alembic (~0.3 s, ~0.7 s on a
loaded box) to learn that competed with the console's first window for the
CPU and the GIL. ``is_current`` answers it with one ``SELECT`` and the
revision ids read from the scripts' text (``test_migrations`` checks that
they agree with alembic's own head).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from core.store.engine import create_store_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x5A1_0700  # arbitrary, fixed: "smartiot migrations"
_REVISION = re.compile(r'^revision(?:: *str)? *= *["\']([^"\']+)["\']', re.MULTILINE)
_DOWN = re.compile(r'^down_revision(?:: *[^=]+)? *= *(None|["\']([^"\']+)["\'])', re.MULTILINE)


@cache
def script_head() -> str | None:
    """The newest revision id as the scripts name it, without alembic: the
    one revision no other script names as its ``down_revision``. None when the
    scripts do not form one line this parser understands (alembic decides then)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        body = script.read_text(encoding="utf-8")
        rev, down = _REVISION.search(body), _DOWN.search(body)
        if rev is None or down is None:
            continue
        revisions.add(rev.group(1))
        if down.group(2):
            parents.add(down.group(2))
    heads = revisions - parents
    return next(iter(heads)) if len(heads) == 1 else None


def is_current(engine: Engine) -> bool:
    """True when the database is already at the scripts' head (one cheap query)."""
    head = script_head()
    if head is None:
        return False
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:  # no alembic_version table yet: a new database
        return False
    return [row[0] for row in rows] == [head]


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Upgrade in one transaction on the given engine (or a fresh one for a URL);
    to head, nothing is imported or locked when the schema is there already."""
    engine = create_store_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        if revision == "head" and is_current(engine):
            return
        from alembic import command

        with engine.begin() as connection:
            _serialise_migrations(connection)
            command.upgrade(alembic_config(connection), revision)
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()


def _serialise_migrations(connection: Connection) -> None:
    """A hub and several consoles may start at once against one database; the
    first to arrive migrates, the others wait and then find nothing to do."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
    elif connection.dialect.name == "sqlite":
        # Transactional DDL: the whole upgrade commits or none of it does.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        rev = MigrationContext.configure(connection).get_current_revision()
        return None if rev is None else str(rev)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration scripts found in {MIGRATIONS_DIR}")
    return str(head)
