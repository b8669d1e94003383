"""The telemetry table keyed by the reading's minute first, (minute, device_id,
metric, ts): keyed by series first, a fleet of 10,000 devices inserted at
60,000 points of the tree and the insert rate fell as the table grew; keyed by
minute, a batch's inserts land in the newest minutes only (docs/scaling.md,
"The telemetry key"). The rows are copied in the new key's order.

The minute rollups and their marks stay as they are: they are keyed by
series and say the same of the same rows.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05

Explicit DDL on purpose; never import core.store.schema here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild(columns: list[sa.Column], key: list[str], copy_sql: str) -> None:
    """``copy_sql`` fills ``telemetry_new`` from ``telemetry``, in the new key's order."""
    bind = op.get_bind()
    # PostgreSQL names the key's index after the constraint, unique per schema:
    # the new one is renamed once the old table is gone. SQLite's names are
    # per table.
    pg = bind.dialect.name == "postgresql"
    op.create_table("telemetry_new", *columns,
                    sa.PrimaryKeyConstraint(*key, name="pk_telemetry_new" if pg
                                            else "pk_telemetry"),
                    sqlite_with_rowid=False)
    bind.execute(sa.text(copy_sql))
    op.drop_table("telemetry")
    op.rename_table("telemetry_new", "telemetry")
    if pg:
        bind.execute(sa.text("ALTER TABLE telemetry RENAME CONSTRAINT pk_telemetry_new"
                             " TO pk_telemetry"))


def upgrade() -> None:
    _rebuild(
        [sa.Column("minute", sa.BigInteger(), nullable=False),
         sa.Column("device_id", sa.String(128), nullable=False),
         sa.Column("metric", sa.String(64), nullable=False),
         sa.Column("ts", sa.BigInteger(), nullable=False),
         sa.Column("value", sa.Float(), nullable=False)],
        ["minute", "device_id", "metric", "ts"],
        # ts // 60,000 floored, as the store computes it: SQL's integer division
        # truncates toward zero, hence the CASE for times before 1970.
        "INSERT INTO telemetry_new (minute, device_id, metric, ts, value)"
        " SELECT CASE WHEN ts >= 0 THEN ts / 60000 ELSE (ts - 59999) / 60000 END,"
        " device_id, metric, ts, value FROM telemetry ORDER BY 1, device_id, metric, ts")


def downgrade() -> None:
    _rebuild(
        [sa.Column("device_id", sa.String(128), nullable=False),
         sa.Column("metric", sa.String(64), nullable=False),
         sa.Column("ts", sa.BigInteger(), nullable=False),
         sa.Column("value", sa.Float(), nullable=False)],
        ["device_id", "metric", "ts"],
        "INSERT INTO telemetry_new (device_id, metric, ts, value)"
        " SELECT device_id, metric, ts, value FROM telemetry ORDER BY device_id, metric, ts")
