"""Minute rollups of the raw telemetry (min, max, sum, count per device, metric
and minute) that the bucketed reads use instead of the raw rows: a week overlay
reads 10,080 rows per series instead of 604,800 (docs/benchmarks.md, "History
reads"). The raw rows stay; ``telemetry_minute_mark`` says up to when each
series is folded. Existing readings older than the fold lag are folded here.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05

Explicit DDL on purpose; never import core.store.schema here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MINUTE_MS = 60_000
FOLD_LAG_MS = 3_600_000  # as core.store.telemetry.FOLD_LAG_MS


def upgrade() -> None:
    op.create_table(
        "telemetry_minute",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("minute_start", sa.BigInteger(), nullable=False),
        sa.Column("min", sa.Float(), nullable=False),
        sa.Column("max", sa.Float(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "metric", "minute_start",
                                name="pk_telemetry_minute"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "telemetry_minute_mark",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("until_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "metric", name="pk_telemetry_minute_mark"),
        sqlite_with_rowid=False,
    )
    cap = (int(time.time() * 1000) - FOLD_LAG_MS) // MINUTE_MS * MINUTE_MS
    bind = op.get_bind()
    bind.execute(sa.text(
        "INSERT INTO telemetry_minute (device_id, metric, minute_start, min, max, total, count)"
        " SELECT device_id, metric, ts / 60000 * 60000, min(value), max(value), sum(value),"
        " count(*) FROM telemetry WHERE ts >= 0 AND ts < :cap"
        " GROUP BY device_id, metric, ts / 60000 * 60000"), {"cap": cap})
    bind.execute(sa.text(
        "INSERT INTO telemetry_minute_mark (device_id, metric, until_ms)"
        " SELECT DISTINCT device_id, metric, :cap FROM telemetry_minute"), {"cap": cap})


def downgrade() -> None:
    op.drop_table("telemetry_minute_mark")
    op.drop_table("telemetry_minute")
