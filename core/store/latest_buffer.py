"""``telemetry_latest`` kept in memory by the one writer that fills it, flushed
every few seconds instead of upserted with every batch.

Why: at 10,000 devices a hub batch spans ~1,000 devices, so keeping the table
current costs one upsert per reading, as much as inserting the reading itself
(bench/profile_hub_writer.py: 11.7 µs of the store's 33 µs per message on
SQLite; on PostgreSQL every upsert rewrites a row). The newest value per device
and metric is already in the writer's hands, so it holds them (a dict, one entry
per device and metric) and writes them in one statement every few seconds.

Nothing accepted is lost if the process dies between two flushes: the readings
themselves are in ``telemetry`` (committed with each batch), and the batch's
transaction also lowers a marker in ``telemetry_latest_pending`` to the oldest
reading time not yet reflected in ``telemetry_latest`` (only when that time goes
down, so it is one small write per flush interval, not per batch). A flush
removes the writer's marker in the flush's own transaction. At the next start,
:func:`repair_latest` folds every reading at or after any marker left behind
into ``telemetry_latest`` (newer wins, as the upsert does) and removes it: a scan
of the primary key's range from that time, not of the whole table.

Readers in the same process (the local console shares the hub's store) see the
buffer overlaid on the table through :meth:`LatestBuffer.overlay`, so the panels
there do not lag; another process reading the database lags by one flush
interval at most. One deferring writer per database is assumed (the hub): a
second one's marker is repaired and removed by the first's start.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, text

from core.ingest.batch import SET_NAMES, MessageRow, Row

PENDING_TABLE = "telemetry_latest_pending"  # spelt out in each statement: no SQL from strings
_SQLITE_UPSERT = (
    "INSERT INTO telemetry_latest (device_id, metric, ts, value) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (device_id, metric) DO UPDATE SET ts = excluded.ts, value = excluded.value"
    " WHERE excluded.ts > telemetry_latest.ts"
)
# PostgreSQL takes a flush through a session-private staging table: COPY, then
# one UPDATE ... FROM for the rows already there (nearly all of them once the
# fleet has reported) and an INSERT of the rest. An upsert of 60,000 rows (10,000
# devices) through ``unnest`` and ON CONFLICT took 547 ms on the 2-core box; this
# way 132 ms, and 3.2 against 4.0 ms at 600 rows (docs/benchmarks.md,
# "PostgreSQL: the hub's batch alone, the latest values through a staging
# table"). ``telemetry_latest``'s fillfactor 50
# (migration 0019) is half of that: an update then finds room on its own page
# (a HOT update) and leaves the primary key's index alone.
_PG_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS telemetry_latest_staging (device_id varchar(128)"
    " NOT NULL, metric varchar(64) NOT NULL, ts bigint NOT NULL, value double precision"
    " NOT NULL) ON COMMIT DELETE ROWS"
)
_PG_STAGE_COPY = "COPY telemetry_latest_staging (device_id, metric, ts, value) FROM STDIN"
_PG_STAGE_TYPES = ["text", "text", "int8", "float8"]
# The staging table is made once per session: the connection's pool record says
# so, and for which writer (a connection the pool replaced starts a new session
# and makes it again).
_PG_STAGED = "telemetry_latest_staging"
# The writer's name is the session's setting ``smartiot.latest_writer``, set
# with the staging table: the flush's merge then removes the writer's marker
# without a parameter, so it stays one simple query.
_PG_SESSION_WRITER = "SELECT set_config('smartiot.latest_writer', %s, false)"
# One round trip (no parameters: psycopg sends the four as one simple query,
# which PostgreSQL runs as one transaction):
# * the flush's commit need not wait for its WAL to reach the disk: what it
#   writes is derived from ``telemetry`` and its marker's removal commits with
#   it, so a crash that loses the commit leaves the marker, and the next start
#   repairs from it; PostgreSQL never keeps part of a transaction, and the next
#   batch's (synchronous) commit flushes the WAL up to and past this one;
# * the UPDATE of the rows already there;
# * every staged row the UPDATE did not settle: new series, and rows another
#   writer committed after the UPDATE's snapshot (READ COMMITTED: the INSERT
#   sees them, the UPDATE did not), which the conflict clause settles by the
#   same rule as everywhere: the newer time wins;
# * the writer's marker, whose readings are now all in ``telemetry_latest``.
_PG_STAGE_MERGE = (
    "SET LOCAL synchronous_commit TO off;"
    " UPDATE telemetry_latest AS l SET ts = s.ts, value = s.value"
    " FROM telemetry_latest_staging AS s"
    " WHERE l.device_id = s.device_id AND l.metric = s.metric AND s.ts > l.ts;"
    " INSERT INTO telemetry_latest (device_id, metric, ts, value)"
    " SELECT s.device_id, s.metric, s.ts, s.value FROM telemetry_latest_staging AS s"
    " WHERE NOT EXISTS (SELECT 1 FROM telemetry_latest AS l WHERE l.device_id ="
    "                   s.device_id AND l.metric = s.metric AND l.ts >= s.ts)"
    " ON CONFLICT (device_id, metric) DO UPDATE SET ts = excluded.ts, value = excluded.value"
    " WHERE excluded.ts > telemetry_latest.ts;"
    " DELETE FROM telemetry_latest_pending"
    " WHERE writer = current_setting('smartiot.latest_writer')"
)
# A marker set on its own, in autocommit, just before a batch's COPY sent alone
# (:meth:`LatestBuffer.mark_ahead`). Its commit need not wait for the disk
# either: the COPY's commit that follows on the same session waits for the WAL
# up to and past it, so the marker is durable before any reading it covers is;
# if it is lost, so is every reading after it. Lowered, never raised: a lower
# marker only makes a repair read more rows.
_PG_MARK_AHEAD = (
    "INSERT INTO telemetry_latest_pending (writer, since_ms)"
    " SELECT %s, %s FROM (SELECT set_config('synchronous_commit', 'off', true)) AS c"
    " ON CONFLICT (writer) DO UPDATE"
    " SET since_ms = least(telemetry_latest_pending.since_ms, excluded.since_ms)"
)
# The first of equal timestamps is the one telemetry keeps (INSERT OR IGNORE /
# ON CONFLICT DO NOTHING): SQLite's bare columns with max() come from the row
# holding the max, and of equal ones the repair cannot tell which came first, so
# a tie keeps what telemetry_latest already has (WHERE excluded.ts > ...). The
# newest row's minute is carried the same way (a bare column), not recomputed
# from its ts: SQL's division truncates where the stored minute is floored.
_SQLITE_REPAIR = (
    "INSERT INTO telemetry_latest (device_id, metric, ts, value)"
    " SELECT t.device_id, t.metric, t.ts, t.value FROM telemetry t"
    " JOIN (SELECT minute, device_id, metric, max(ts) AS ts FROM telemetry"
    "       WHERE minute >= :since_minute AND ts >= :since GROUP BY device_id, metric) m"
    " ON t.minute = m.minute AND t.device_id = m.device_id AND t.metric = m.metric"
    " AND t.ts = m.ts"
    " WHERE true"
    " ON CONFLICT (device_id, metric) DO UPDATE SET ts = excluded.ts, value = excluded.value"
    " WHERE excluded.ts > telemetry_latest.ts"
)
# The same for a table from before migration 0017 (no minute column): migration
# 0015's downgrade repairs with it.
_SQLITE_REPAIR_SERIES_KEY = (
    "INSERT INTO telemetry_latest (device_id, metric, ts, value)"
    " SELECT t.device_id, t.metric, t.ts, t.value FROM telemetry t"
    " JOIN (SELECT device_id, metric, max(ts) AS ts FROM telemetry WHERE ts >= :since"
    "       GROUP BY device_id, metric) m"
    " ON t.device_id = m.device_id AND t.metric = m.metric AND t.ts = m.ts"
    " WHERE true"
    " ON CONFLICT (device_id, metric) DO UPDATE SET ts = excluded.ts, value = excluded.value"
    " WHERE excluded.ts > telemetry_latest.ts"
)
_PG_REPAIR = (
    "INSERT INTO telemetry_latest (device_id, metric, ts, value)"
    " SELECT DISTINCT ON (device_id, metric) device_id, metric, ts, value FROM telemetry"
    " WHERE minute >= :since_minute AND ts >= :since ORDER BY device_id, metric, ts DESC"
    " ON CONFLICT (device_id, metric) DO UPDATE SET ts = excluded.ts, value = excluded.value"
    " WHERE excluded.ts > telemetry_latest.ts"
)
_PG_REPAIR_SERIES_KEY = (
    "INSERT INTO telemetry_latest (device_id, metric, ts, value)"
    " SELECT DISTINCT ON (device_id, metric) device_id, metric, ts, value FROM telemetry"
    " WHERE ts >= :since ORDER BY device_id, metric, ts DESC"
    " ON CONFLICT (device_id, metric) DO UPDATE SET ts = excluded.ts, value = excluded.value"
    " WHERE excluded.ts > telemetry_latest.ts"
)


def upsert_latest(conn: Connection, rows: list[Row], writer: str) -> None:
    """``rows`` (one per device and metric: the staging's UPDATE would pick
    one of two at random) into ``telemetry_latest``, and ``writer``'s marker
    removed; an older or equal time never replaces what is there."""
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        staged = conn.connection.info  # the DBAPI connection's: cleared when it is replaced
        with raw.cursor() as cur:
            if not rows:
                cur.execute("DELETE FROM telemetry_latest_pending WHERE writer = %s", (writer,))
                return
            if staged.get(_PG_STAGED) != writer:
                cur.execute(_PG_STAGE)
                cur.execute(_PG_SESSION_WRITER, (writer,))
                staged[_PG_STAGED] = writer
            with cur.copy(_PG_STAGE_COPY) as copy:
                copy.set_types(_PG_STAGE_TYPES)
                write = copy.write_row
                for row in rows:
                    write(row)
            cur.execute(_PG_STAGE_MERGE)
        return
    cursor = conn.connection.cursor()
    try:
        if rows:
            cursor.executemany(_SQLITE_UPSERT, rows)
        cursor.execute("DELETE FROM telemetry_latest_pending WHERE writer = ?", (writer,))
    finally:
        cursor.close()


def repair_latest(engine: Engine) -> int:
    """Fold the readings a writer stored but had not flushed to
    ``telemetry_latest`` when it stopped (a crash, a kill) into it; returns how
    many markers were repaired (0 after a clean stop).

    A scan of ``telemetry`` from the oldest marker's minute on (the primary
    key leads with the minute): paid once, at the start after a crash, never
    on the ingest path."""
    with engine.begin() as conn:
        return repair_latest_in(conn)


def repair_latest_in(conn: Connection, *, minute_key: bool = True) -> int:
    """:func:`repair_latest` inside the caller's transaction (a migration;
    ``minute_key=False`` for a table from before migration 0017, which has no
    ``minute`` column)."""
    pg = conn.dialect.name == "postgresql"
    repair = ((_PG_REPAIR if pg else _SQLITE_REPAIR) if minute_key
              else (_PG_REPAIR_SERIES_KEY if pg else _SQLITE_REPAIR_SERIES_KEY))
    markers = conn.execute(text("SELECT writer, since_ms FROM telemetry_latest_pending")).all()
    if not markers:
        return 0
    since = min(int(m[1]) for m in markers)
    conn.execute(text(repair), {"since": since, "since_minute": since // 60_000})
    for writer, since_ms in markers:
        conn.execute(text("DELETE FROM telemetry_latest_pending"
                          " WHERE writer = :w AND since_ms = :s"),
                     {"w": writer, "s": since_ms})
    return len(markers)


class LatestBuffer:
    """The newest message per (device, metric set) written since the last
    flush, its values spread into rows per metric when read.

    :meth:`note_batch` runs inside a batch's transaction (it may lower the
    marker there), :meth:`committed` after that transaction committed (only
    then do the rows count as written), :meth:`flush` between batches: all on
    the one writer thread. Readers on other threads take :meth:`overlay`.
    This runs for every message the hub stores, so it must cost far less than
    the upsert it replaces: one dict step per message row (kept per set, not
    per metric: a sixth of the steps; a message's rows come together, so the
    device is looked up once for them)."""

    def __init__(self, writer: str | None = None,
                 names_of: Callable[[int], tuple[str, ...]] | None = None) -> None:
        self.writer = writer or f"w-{uuid.uuid4().hex[:12]}"
        self._names_of = names_of or SET_NAMES.__getitem__
        self._rows: dict[str, dict[int, MessageRow]] = {}  # device -> set -> message row
        self._lock = threading.Lock()
        self._marker: int | None = None  # the marker this writer has in the table
        self._pending_marker: int | None = None
        self._ahead: int | None = None  # set by mark_ahead, the batch not yet committed

    def __len__(self) -> int:
        return len(self.overlay())

    def must_mark(self, oldest: int) -> bool:
        """Whether a batch whose earliest reading is ``oldest`` lowers (or
        sets) the marker: only then does :meth:`note_batch` write."""
        return self._marker is None or oldest < self._marker

    def mark_ahead(self, raw: Any, oldest: int) -> None:
        """PostgreSQL, on a connection in autocommit, just before a batch's
        ``COPY`` sent alone: lower (or set) the marker to ``oldest`` in its own
        statement, so that the batch after a flush, which must move the marker,
        is still one ``COPY`` and not a transaction of three statements. A
        marker set this way and a ``COPY`` that then fails leave the marker
        lower than it need be: the repair reads more rows, nothing else.

        The marker counts as this writer's only once the ``COPY`` committed
        (:meth:`note_batch`, :meth:`committed`): its own commit is
        asynchronous, so a server that fails before the ``COPY`` may lose it,
        and the retried batch must then set it again."""
        with raw.cursor() as cur:
            cur.execute(_PG_MARK_AHEAD, (self.writer, oldest))
        self._ahead = oldest if self._marker is None else min(self._marker, oldest)

    def note_batch(self, conn: Connection | None, messages: list[MessageRow],
                   oldest: int) -> list[MessageRow]:
        """In the batch's transaction: lower the marker if this batch holds an
        older reading (``oldest``, its earliest time, which the writer has
        already found) than any unflushed one. Returns the rows for
        :meth:`committed`."""
        ahead, self._ahead = self._ahead, None
        self._pending_marker = self._marker if ahead is None else ahead
        if not messages:
            return messages
        if self._pending_marker is None or oldest < self._pending_marker:
            assert conn is not None, "a batch that moves the marker needs its transaction"
            params = {"w": self.writer, "s": oldest}
            if self._marker is None:
                conn.execute(text("DELETE FROM telemetry_latest_pending WHERE writer = :w"), params)
                conn.execute(text("INSERT INTO telemetry_latest_pending (writer, since_ms)"
                                  " VALUES (:w, :s)"), params)
            else:
                conn.execute(text("UPDATE telemetry_latest_pending SET since_ms = :s"
                                  " WHERE writer = :w"), params)
            self._pending_marker = oldest
        return messages

    def committed(self, messages: list[MessageRow]) -> None:
        """The batch's transaction committed: its marker and rows now hold. Of
        equal timestamps the first stays (as in the telemetry table)."""
        self._marker = self._pending_marker
        if not messages:
            return
        with self._lock:
            held = self._rows
            get = held.get
            last: str | None = None
            sets: dict[int, MessageRow] = {}
            for row in messages:
                device_id = row[1]
                if device_id is not last:
                    last = device_id
                    found = get(device_id)
                    if found is None:
                        found = held[device_id] = {}
                    sets = found
                seen = sets.get(row[3])
                if seen is None or row[2] > seen[2]:
                    sets[row[3]] = row

    def rolled_back(self) -> None:
        """The batch's transaction failed: the marker in the table is what it
        was (or lower, set ahead: not counted on, the retry sets it again)."""
        self._pending_marker = self._marker
        self._ahead = None

    def flush(self, engine: Engine) -> int:
        """Write what is held in one transaction and drop this writer's marker
        in it; on failure everything stays held (and it raises)."""
        rows = self.overlay()
        if not rows and self._marker is None:
            return 0
        info: dict[Any, Any] | None = None
        try:
            with engine.begin() as conn:
                info = conn.connection.info
                upsert_latest(conn, rows, self.writer)
        except BaseException:
            if info is not None:  # a staging table made in it went with the rollback
                info.pop(_PG_STAGED, None)
            raise
        with self._lock:
            self._rows = {}
        self._marker = None
        return len(rows)

    def overlay(self, device_id: str | None = None) -> list[Row]:
        """What is held (for one device, or all) as one row per device and
        metric, the newest (of equal times, the first set's), for readers in
        this process and for the flush."""
        with self._lock:
            if device_id is None:
                held = [row for sets in self._rows.values() for row in sets.values()]
            else:
                held = list(self._rows.get(device_id, {}).values())
        names_of = self._names_of
        newest: dict[tuple[str, str], Row] = {}
        for row in held:
            device, ts = row[1], row[2]
            for metric, value in zip(names_of(row[3]), row[4:], strict=False):
                seen = newest.get((device, metric))
                if seen is None or ts > seen[2]:
                    newest[(device, metric)] = (device, metric, ts, value)
        return list(newest.values())
