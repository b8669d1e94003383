"""Sign-in: each person's argon2id password hash beside their directory entry,
and the refresh tokens handed out (stored as SHA-256 only; one family per
sign-in, so a replayed token revokes the sign-in it came from).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04

Explicit DDL on purpose; never import core.store.schema here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("password_hash", sa.String(255), nullable=True))
        batch.add_column(sa.Column("password_changed_at", sa.DateTime(timezone=True),
                                   nullable=True))
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(128), nullable=False),
        sa.Column("family", sa.String(64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("client", sa.String(128), nullable=False, server_default=""),
    )
    op.create_index("ix_refresh_tokens_user_name", "refresh_tokens", ["user_name"])
    op.create_index("ix_refresh_tokens_family", "refresh_tokens", ["family"])


def downgrade() -> None:
    op.drop_index("ix_refresh_tokens_family", table_name="refresh_tokens")
    op.drop_index("ix_refresh_tokens_user_name", table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_changed_at")
        batch.drop_column("password_hash")
