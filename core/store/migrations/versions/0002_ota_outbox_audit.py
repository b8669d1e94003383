"""OTA (firmware, deployments, executions), outbox, audit, telemetry rollups,
and alert snoozing.

Revision ID: 0002
Revises: 0001
Create Date: 2024-11-26

Explicit DDL on purpose; never import core.store.schema here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("snoozed_until", TS, nullable=True))

    op.create_table(
        "firmware",
        sa.Column("firmware_id", sa.String(200), nullable=False),
        sa.Column("device_type", sa.String(64), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("build", sa.String(128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=True),
        sa.Column("release_notes", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("firmware_id", name="pk_firmware"),
        sa.UniqueConstraint("device_type", "version", name="uq_firmware_device_type_version"),
    )
    op.create_table(
        "firmware_images",
        sa.Column("firmware_id", sa.String(200), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("firmware_id", name="pk_firmware_images"),
        sa.ForeignKeyConstraint(
            ["firmware_id"],
            ["firmware.firmware_id"],
            name="fk_firmware_images_firmware_id_firmware",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "deployments",
        sa.Column("deployment_id", sa.String(64), nullable=False),
        sa.Column("firmware_id", sa.String(200), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("rollout", sa.JSON(), nullable=False),
        sa.Column("abort", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("deployment_id", name="pk_deployments"),
    )
    op.create_index("ix_deployments_created_at", "deployments", ["created_at"])

    op.create_table(
        "executions",
        sa.Column("deployment_id", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version_number", sa.Integer(), nullable=False),
        sa.Column("status_details", sa.JSON(), nullable=False),
        sa.Column("queued_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("deployment_id", "device_id", name="pk_executions"),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.deployment_id"],
            name="fk_executions_deployment_id_deployments",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_executions_device_id_status", "executions", ["device_id", "status"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("applied_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
    )
    op.create_index(
        "ix_outbox_applied_at_next_attempt_at", "outbox", ["applied_at", "next_attempt_at"]
    )

    op.create_table(
        "audit",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit"),
        sa.UniqueConstraint("prev_hash", name="uq_audit_prev_hash"),
        sa.UniqueConstraint("hash", name="uq_audit_hash"),
    )

    op.create_table(
        "telemetry_rollup",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("bucket_ms", sa.BigInteger(), nullable=False),
        sa.Column("bucket_start", sa.BigInteger(), nullable=False),
        sa.Column("min", sa.Float(), nullable=False),
        sa.Column("avg", sa.Float(), nullable=False),
        sa.Column("max", sa.Float(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "device_id", "metric", "bucket_ms", "bucket_start", name="pk_telemetry_rollup"
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("telemetry_rollup")
    op.drop_table("audit")
    op.drop_table("outbox")
    op.drop_table("executions")
    op.drop_table("deployments")
    op.drop_table("firmware_images")
    op.drop_table("firmware")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("snoozed_until")
