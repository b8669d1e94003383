"""A hub restart's loss is the hub's: link statistics count the seq gaps that
fall in a period the hub was down or disconnected (``hub_lost``) apart from
the device's own loss, and each hub session keeps when it was last alive and
its recent outages (``hub_state``) so a restarted hub knows its own gap.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04

Explicit DDL on purpose; never import core.store.schema here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("link_stats") as batch:
        batch.add_column(sa.Column("hub_lost", sa.BigInteger(), nullable=False,
                                   server_default="0"))
    op.create_table(
        "hub_state",
        sa.Column("client_id", sa.String(200), primary_key=True),
        sa.Column("alive_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("outages", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hub_state")
    with op.batch_alter_table("link_stats") as batch:
        batch.drop_column("hub_lost")
