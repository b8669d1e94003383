"""Staged rollouts: which key signed each image, job documents, target
specs, abort reasons, persisted rollout state, and execution numbers for retries.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Explicit DDL on purpose; never import core.store.schema here. Columns are
added with server defaults so deployments made before this revision stay
readable (they simply have no document or rollout state).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("firmware") as batch:
        batch.add_column(
            sa.Column("signing_key_id", sa.String(64), nullable=False, server_default="")
        )
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("document", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(
            sa.Column("target_spec", sa.JSON(), nullable=False, server_default="{}")
        )
        batch.add_column(sa.Column("reason", sa.Text(), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("rollout_state", sa.JSON(), nullable=False, server_default="{}")
        )
    with op.batch_alter_table("executions") as batch:
        batch.add_column(
            sa.Column("execution_number", sa.Integer(), nullable=False, server_default="1")
        )
        batch.create_index("ix_executions_deployment_id_status", ["deployment_id", "status"])


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_index("ix_executions_deployment_id_status")
        batch.drop_column("execution_number")
    with op.batch_alter_table("deployments") as batch:
        for column in ("rollout_state", "reason", "target_spec", "document"):
            batch.drop_column(column)
    with op.batch_alter_table("firmware") as batch:
        batch.drop_column("signing_key_id")
