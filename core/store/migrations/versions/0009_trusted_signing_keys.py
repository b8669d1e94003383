"""The code-signing public keys a team's fleet trusts, with their owners.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

Explicit DDL on purpose; never import core.store.schema here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trusted_signing_keys",
        sa.Column("key_id", sa.String(16), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("public_pem", sa.Text(), nullable=False),
        sa.Column("added_by", sa.String(128), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_by", sa.String(128), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(500), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_table("trusted_signing_keys")
