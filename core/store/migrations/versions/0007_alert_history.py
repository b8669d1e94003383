"""Alert history: every change of an alert as an event (raised, acknowledged,
snoozed, resolved, reopened) with who did it and why, and the resolution's
comment on the alert itself.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

Explicit DDL on purpose; never import core.store.schema here. A recurrence
reopens the alert under the same id and clears its resolution fields for the
new occurrence; the events keep the earlier resolution. Alerts stored before
this revision get their history back-filled from what their fields still say.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("resolve_comment", sa.Text(), nullable=True))
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False, server_default=""),
        sa.Column("details", sa.JSON(), nullable=False, server_default="{}"),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_alert_events_alert_id", "alert_events", ["alert_id", "id"])
    op.execute(
        "INSERT INTO alert_events (alert_id, at, kind, actor, comment, details, version) "
        "SELECT alert_id, created_at, 'raised', 'system', '', '{}', 1 FROM alerts"
    )
    op.execute(
        "INSERT INTO alert_events (alert_id, at, kind, actor, comment, details, version) "
        "SELECT alert_id, acknowledged_at, 'acknowledged', acknowledged_by, "
        "COALESCE(ack_comment, ''), '{}', version FROM alerts "
        "WHERE acknowledged_at IS NOT NULL AND acknowledged_by IS NOT NULL"
    )
    op.execute(
        "INSERT INTO alert_events (alert_id, at, kind, actor, comment, details, version) "
        "SELECT alert_id, resolved_at, 'resolved', resolved_by, '', '{}', version FROM alerts "
        "WHERE resolved_at IS NOT NULL AND resolved_by IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_alert_events_alert_id", table_name="alert_events")
    op.drop_table("alert_events")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("resolve_comment")
