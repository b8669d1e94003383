"""Alembic environment, driven programmatically by ``core.store.migrate``.

No alembic.ini and no ``fileConfig``: migrations run inside the console and
the hub at start-up, where reconfiguring logging would clobber the app's own.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from core.store.engine import create_store_engine
from core.store.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode copies tables.
        render_as_batch=connection.dialect.name == "sqlite",
        # No version_table_schema: alembic_version lives in the connection's
        # current schema (search_path on PostgreSQL), so per-schema databases
        # each keep their own revision.
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass a connection in config.attributes")
    engine = create_store_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
_main()
