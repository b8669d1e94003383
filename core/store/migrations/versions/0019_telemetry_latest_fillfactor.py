"""``telemetry_latest`` on PostgreSQL with pages half full (fillfactor 50).

Every flush of the hub's latest values updates nearly every row of the table
(60,000 at 10,000 devices every 5 s). With room left on each page, the new
version of a row goes on its own page (a HOT update): the primary key's index
is not touched and the page does not split. A flush of 60,000 rows took
132 ms this way against 332 ms with full pages (docs/benchmarks.md,
"PostgreSQL: the hub's batch alone, the latest values through a staging
table", on a table built with it). The setting rewrites
nothing: pages already full gain room only as VACUUM frees it (``VACUUM FULL
telemetry_latest`` while the hub is stopped rewrites them at once). SQLite has no
such setting: nothing to do there. core.store.schema cannot say fillfactor, so the
metadata comparison does not see it.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

Explicit DDL on purpose; never import core.store.schema here.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE telemetry_latest SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE telemetry_latest RESET (fillfactor)")
