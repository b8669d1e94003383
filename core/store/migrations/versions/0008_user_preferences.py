"""Per-person preferences kept by the backend (the REST API's /users/me/preferences).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

Explicit DDL on purpose; never import core.store.schema here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_preferences",
        sa.Column("user", sa.String(128), primary_key=True),
        sa.Column("prefs", sa.JSON(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("user_preferences")
