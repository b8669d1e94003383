"""Signed checkpoints of the audit chain's head, kept outside the audit table
so that deleting the newest audit rows is caught by verification.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

Explicit DDL on purpose; never import core.store.schema here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("head_seq", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("entry_count", sa.Integer(), nullable=False),
        sa.Column("prev_mac", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_audit_checkpoints"),
        sa.UniqueConstraint("prev_mac", name="uq_audit_checkpoints_prev_mac"),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
