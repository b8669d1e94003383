"""The hub keeps ``telemetry_latest`` in memory and flushes it every few
seconds; each writer's marker here says from which reading time on the table may
lag the readings already stored, so the next start folds them in after a crash
(core/store/latest_buffer.py). The telemetry layout itself stays one row per
reading (docs/benchmarks.md, "Hub ingest": why not per-message rows yet).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04

Explicit DDL on purpose; never import core.store.schema here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "telemetry_latest_pending",
        sa.Column("writer", sa.String(64), primary_key=True),
        sa.Column("since_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    # A marker left by a crashed writer is folded in first: the older schema
    # upserts telemetry_latest with every batch and has no way to catch up later.
    from core.store.latest_buffer import repair_latest_in

    repair_latest_in(op.get_bind(), minute_key=False)
    op.drop_table("telemetry_latest_pending")
