"""What boot detection needs to survive a hub restart: per device, the newest
``uptime`` and reading time of its current boot, the estimated boot time, and
the time of its latest connect (from the retained status).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

Explicit DDL on purpose; never import core.store.schema here. The columns are
nullable: rows written before this revision simply carry no boot information,
and the hub learns it again from the next messages.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("link_stats") as batch:
        batch.add_column(sa.Column("last_uptime", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("last_ts_ms", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("boot_at_ms", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("connected_at_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("link_stats") as batch:
        batch.drop_column("connected_at_ms")
        batch.drop_column("boot_at_ms")
        batch.drop_column("last_ts_ms")
        batch.drop_column("last_uptime")
