"""Run the store's Alembic migrations from code.

The console and the hub migrate at start-up, so there is no alembic.ini to
ship or locate: the configuration is built here, pointing at the scripts that
live inside this package.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from core.store.engine import create_store_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x5A1_0700  # arbitrary, fixed: "smartiot migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Upgrade in one transaction on the given engine (or a fresh one for a URL)."""
    engine = create_store_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
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
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        rev = MigrationContext.configure(connection).get_current_revision()
        return None if rev is None else str(rev)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration scripts found in {MIGRATIONS_DIR}")
    return str(head)
