"""Telemetry as a row per message: ``telemetry_message`` keyed (minute,
device_id, ts, metric_set) with its values in columns v0..v7, and
``telemetry_metric_slot`` saying which metric each column of a set holds.
``telemetry`` becomes a view of them with the columns it had (minute,
device_id, metric, ts, value), so what reads readings reads them as before.
A row per reading was six insertions a message and what capped the hub's
ingest (docs/scaling.md, "The telemetry key").

The rows are copied in the old key's order, (minute, device_id, metric, ts),
one (minute, device) block at a time: the block's readings of one time are
one message, their metrics in name order (the old table kept no other).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

Explicit DDL on purpose; never import core.store.schema here. The set ids
are core.store.metric_sets.set_id, a stored format that never changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from core.store.metric_sets import COLUMNS, set_id

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_VALUES = [f"v{i}" for i in range(COLUMNS)]
_VIEW = (
    "CREATE VIEW telemetry AS SELECT t.minute AS minute, t.device_id AS device_id,"
    " s.metric AS metric, t.ts AS ts, CASE s.slot "
    + " ".join(f"WHEN {i} THEN t.v{i}" for i in range(COLUMNS))
    + " END AS value FROM telemetry_message t"
    " JOIN telemetry_metric_slot s ON s.metric_set = t.metric_set"
)
_CHUNK = 5_000


def _messages(rows: Iterator[Any]) -> Iterator[tuple[tuple[Any, ...], tuple[str, ...]]]:
    """(minute, device, metric, ts, value) in the old key's order -> message
    rows and their sets, a (minute, device) block at a time."""
    block: dict[int, dict[str, float]] = {}
    at: tuple[int, str] | None = None

    def flush() -> Iterator[tuple[tuple[Any, ...], tuple[str, ...]]]:
        assert at is not None
        for ts in sorted(block):
            metrics = block[ts]
            names = sorted(metrics)
            for start in range(0, len(names), COLUMNS):
                part = tuple(names[start:start + COLUMNS])
                values = [metrics[n] for n in part] + [None] * (COLUMNS - len(part))
                yield (at[0], at[1], ts, set_id(part), *values), part

    for minute, device_id, metric, ts, value in rows:
        if at != (minute, device_id):
            if at is not None:
                yield from flush()
            at, block = (minute, device_id), {}
        block.setdefault(int(ts), {})[str(metric)] = float(value)
    if at is not None:
        yield from flush()


def upgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    op.create_table(
        "telemetry_message",
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("metric_set", sa.BigInteger(), nullable=False),
        *(sa.Column(v, sa.Float(), nullable=True) for v in _VALUES),
        sa.PrimaryKeyConstraint("minute", "device_id", "ts", "metric_set",
                                name="pk_telemetry_message"),
        sqlite_with_rowid=False)
    op.create_table(
        "telemetry_metric_slot",
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("metric_set", sa.BigInteger(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("metric", "metric_set", "slot",
                                name="pk_telemetry_metric_slot"),
        sqlite_with_rowid=False)
    op.create_index("ix_telemetry_metric_slot_set", "telemetry_metric_slot",
                    ["metric_set", "slot"], unique=True)
    p = "%s" if pg else "?"
    insert = (f"INSERT INTO telemetry_message (minute, device_id, ts, metric_set,"
              f" {', '.join(_VALUES)}) VALUES ({', '.join([p] * (4 + COLUMNS))})")
    slots = f"INSERT INTO telemetry_metric_slot (metric, metric_set, slot) VALUES ({p}, {p}, {p})"
    source = bind.connection.dbapi_connection
    assert source is not None
    # PostgreSQL: a server-side cursor, or the client would hold the whole table
    reader = source.cursor(name="telemetry_0018") if pg else source.cursor()
    writer = source.cursor()
    try:
        reader.execute("SELECT minute, device_id, metric, ts, value FROM telemetry"
                       " ORDER BY minute, device_id, metric, ts")
        sets: set[int] = set()
        pending: list[tuple[Any, ...]] = []

        def rows() -> Iterator[Any]:
            while batch := reader.fetchmany(_CHUNK):
                yield from batch

        for row, names in _messages(rows()):
            if row[3] not in sets:
                sets.add(row[3])
                writer.executemany(slots, [(n, row[3], i) for i, n in enumerate(names)])
            pending.append(row)
            if len(pending) >= _CHUNK:
                writer.executemany(insert, pending)
                pending = []
        if pending:
            writer.executemany(insert, pending)
    finally:
        reader.close()
        writer.close()
    op.drop_table("telemetry")
    bind.execute(sa.text(_VIEW))


def downgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    op.create_table("telemetry_new",
                    sa.Column("minute", sa.BigInteger(), nullable=False),
                    sa.Column("device_id", sa.String(128), nullable=False),
                    sa.Column("metric", sa.String(64), nullable=False),
                    sa.Column("ts", sa.BigInteger(), nullable=False),
                    sa.Column("value", sa.Float(), nullable=False),
                    sa.PrimaryKeyConstraint("minute", "device_id", "metric", "ts",
                                            name="pk_telemetry_new" if pg else "pk_telemetry"),
                    sqlite_with_rowid=False)
    # two readings of one series and time (two sets holding one metric): one, the lower
    bind.execute(sa.text(
        "INSERT INTO telemetry_new (minute, device_id, metric, ts, value)"
        " SELECT minute, device_id, metric, ts, min(value) FROM telemetry"
        " GROUP BY minute, device_id, metric, ts ORDER BY minute, device_id, metric, ts"))
    bind.execute(sa.text("DROP VIEW telemetry"))
    op.drop_index("ix_telemetry_metric_slot_set", table_name="telemetry_metric_slot")
    op.drop_table("telemetry_metric_slot")
    op.drop_table("telemetry_message")
    op.rename_table("telemetry_new", "telemetry")
    if pg:
        bind.execute(sa.text("ALTER TABLE telemetry RENAME CONSTRAINT pk_telemetry_new"
                             " TO pk_telemetry"))
