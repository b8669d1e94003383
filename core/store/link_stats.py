"""SQL link statistics: one row per device, written by the hub in batches."""

from __future__ import annotations

import builtins
import logging
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from core.model.link import LinkStats
from core.ports.hub import LinkStatsStore
from core.store._sql import chunked, write_isolated
from core.store.schema import LinkStatsRow, table_of

_ls = table_of(LinkStatsRow)
_COLUMNS = ("device_id", "last_seq", "received", "lost", "duplicates", "out_of_order",
            "rejected", "reboots", "updated_at", "last_uptime", "last_ts_ms", "boot_at_ms",
            "connected_at_ms", "hub_lost")
# a late flush never rolls a device's counters back (updated_at decides)
_UPSERT = (
    f"INSERT INTO link_stats ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
    " ON CONFLICT (device_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c != "device_id")
    + " WHERE excluded.updated_at >= link_stats.updated_at"
)
log = logging.getLogger(__name__)


class SqlLinkStatsStore(LinkStatsStore):
    """Each ``LinkStats`` is the device's cumulative snapshot (the hub's tracker
    owns the running totals and ``last_seq``), so an upsert replaces the row.
    A snapshot older than the stored one (``updated_at``) is ignored, so a late
    flush can never roll the counters back."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.skipped = 0  # rows the database refused (see write_isolated)

    def get(self, device_id: str) -> LinkStats | None:
        with self._sessions() as session:
            row = session.get(LinkStatsRow, device_id)
            return None if row is None else _to_domain(row)

    def upsert_many(self, stats: Sequence[LinkStats]) -> None:
        """All rows in one transaction with ``INSERT ... ON CONFLICT DO UPDATE``
        (SQLite and PostgreSQL); within one batch the newest snapshot per device wins."""
        newest: dict[str, LinkStats] = {}
        for s in stats:
            seen = newest.get(s.device_id)
            if seen is None or s.updated_at >= seen.updated_at:
                newest[s.device_id] = s
        if not newest:
            return
        stamp = _ls.c.updated_at.type.bind_processor(self._engine.dialect)
        stamps: dict[Any, Any] = {}  # a batch's snapshots share a few instants
        rows = []
        for s in newest.values():
            at = s.updated_at
            stored = stamps.get(at)
            if stored is None:
                stored = stamps[at] = at if stamp is None else stamp(at)
            rows.append((s.device_id, s.last_seq, s.received, s.lost, s.duplicates,
                         s.out_of_order, s.rejected, s.reboots, stored, s.last_uptime,
                         s.last_ts_ms, s.boot_at_ms, s.connected_at_ms, s.hub_lost))
        self.skipped += write_isolated(self._write, rows, itemgetter(0),
                                       "link statistics", log)

    def _write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Through the driver's ``executemany`` (as telemetry is): the hub writes
        a row per device that spoke in the batch, at 10,000 devices one per
        message, and SQLAlchemy's per-row parameter processing of a compiled
        ``insert().on_conflict_do_update()`` cost ~6x the driver's own loop
        (bench/profile_hub_writer.py). Rows are tuples in ``_COLUMNS`` order,
        ``updated_at`` already in the column type's stored form. Errors still
        come wrapped as SQLAlchemy's (``exec_driver_sql``), so
        ``write_isolated`` judges them."""
        with self._engine.begin() as conn:
            sql = _UPSERT if conn.dialect.paramstyle == "qmark" else _UPSERT.replace("?", "%s")
            for part in chunked(rows):
                conn.exec_driver_sql(sql, list(part))

    def list(self) -> builtins.list[LinkStats]:
        stmt = select(LinkStatsRow).order_by(LinkStatsRow.device_id)
        with self._sessions() as session:
            return [_to_domain(row) for row in session.scalars(stmt)]


def _to_domain(row: LinkStatsRow) -> LinkStats:
    return LinkStats(
        device_id=row.device_id,
        last_seq=row.last_seq,
        received=row.received,
        lost=row.lost,
        duplicates=row.duplicates,
        out_of_order=row.out_of_order,
        rejected=row.rejected,
        reboots=row.reboots,
        updated_at=row.updated_at,
        last_uptime=row.last_uptime,
        last_ts_ms=row.last_ts_ms,
        boot_at_ms=row.boot_at_ms,
        connected_at_ms=row.connected_at_ms,
        hub_lost=row.hub_lost,
    )
