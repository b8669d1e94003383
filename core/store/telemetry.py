"""SQL telemetry store: Core bulk inserts in, numpy column arrays out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import chain
from operator import itemgetter
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, case, delete, func, inspect, literal, select, text, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from core.errors import ValidationError
from core.ingest.batch import ReadingBatch, Row, RowBatch
from core.model import Reading
from core.model.timeutil import from_epoch_ms, to_epoch_ms
from core.ports.telemetry import Series, TelemetryStore
from core.store._sql import (
    chunked,
    dialect_insert,
    on_conflict_update,
)
from core.store.latest_buffer import LatestBuffer, repair_latest
from core.store.metric_sets import COLUMNS, MessageRow, MetricSets
from core.store.schema import (
    telemetry,
    telemetry_latest,
    telemetry_message,
    telemetry_minute,
    telemetry_minute_mark,
    telemetry_rollup,
)

log = logging.getLogger(__name__)

_t, _latest, _roll, _min = telemetry, telemetry_latest, telemetry_rollup, telemetry_minute
MINUTE_MS = 60_000
#: Minutes younger than this (behind the wall clock) stay raw: readings still
#: arriving for them (a batch in flight, a device's clock slightly behind) land
#: in the raw rows, which the bucketed reads use for the newest hour.
FOLD_LAG_MS = 3_600_000
#: A batch whose oldest reading is younger than ``FOLD_LAG_MS - LATE_MARGIN_MS``
#: cannot touch a folded minute, even if a fold on a clock up to this much ahead
#: (or a write transaction this long) runs meanwhile; older ones invalidate the
#: minutes they land in (:meth:`SqlTelemetryStore._unfold_late`).
LATE_MARGIN_MS = 600_000
_IN_CHUNK = 500  # devices per grouped query (bound parameters stay far below limits)
_QUERY_THREADS = 4
# The message rows carry their minute (ts // 60,000, floored), computed once
# per message at ingest: COPY cannot compute it, and both dialects then take
# the rows as they are.
_VALUE_COLUMNS = ", ".join(f"v{i}" for i in range(COLUMNS))
_SQLITE_INSERT = (
    f"INSERT OR IGNORE INTO telemetry_message (minute, device_id, ts, metric_set, {_VALUE_COLUMNS})"
    f" VALUES ({', '.join(['?'] * (4 + COLUMNS))})")
_SQLITE_SLOTS = ("INSERT OR IGNORE INTO telemetry_metric_slot (metric, metric_set, slot)"
                 " VALUES (?, ?, ?)")
_PG_SLOTS = _SQLITE_SLOTS.replace("OR IGNORE ", "").replace("?", "%s") + " ON CONFLICT DO NOTHING"
_SLOTS_OF = "SELECT metric, slot FROM telemetry_metric_slot WHERE metric_set = {p} ORDER BY slot"
_PG_COPY = (f"COPY telemetry_message (minute, device_id, ts, metric_set, {_VALUE_COLUMNS})"
            " FROM STDIN (FORMAT BINARY)")
# the columns' types, in order, as binary COPY needs them said (varchar is text on the wire)
_PG_COPY_TYPES = ["int8", "text", "int8", "int8", *(["float8"] * COLUMNS)]
# Per session; ON COMMIT DELETE ROWS empties it with each batch's transaction
# (a rolled-back batch takes its rows, or the table, with it); n keeps the order.
_PG_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS telemetry_message_staging (n bigserial,"
    " minute bigint NOT NULL, device_id varchar(128) NOT NULL, ts bigint NOT NULL,"
    " metric_set bigint NOT NULL, "
    + ", ".join(f"v{i} double precision" for i in range(COLUMNS))
    + ") ON COMMIT DELETE ROWS"
)
_PG_STAGE_COPY = (f"COPY telemetry_message_staging (minute, device_id, ts, metric_set,"
                  f" {_VALUE_COLUMNS}) FROM STDIN (FORMAT BINARY)")
_PG_MERGE = (
    f"INSERT INTO telemetry_message (minute, device_id, ts, metric_set, {_VALUE_COLUMNS})"
    f" SELECT minute, device_id, ts, metric_set, {_VALUE_COLUMNS} FROM telemetry_message_staging"
    " ORDER BY n ON CONFLICT DO NOTHING"
)
_SQLITE_LATEST = (
    "INSERT INTO telemetry_latest (device_id, metric, ts, value) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (device_id, metric) DO UPDATE SET ts = excluded.ts, value = excluded.value"
    " WHERE excluded.ts > telemetry_latest.ts"
)
_PG_LATEST = (
    "INSERT INTO telemetry_latest (device_id, metric, ts, value)"
    " SELECT * FROM unnest(%s::varchar[], %s::varchar[], %s::bigint[], %s::float8[])"
    " ON CONFLICT (device_id, metric) DO UPDATE SET ts = excluded.ts, value = excluded.value"
    " WHERE excluded.ts > telemetry_latest.ts"
)
_ts_of = itemgetter(2)  # of a reading row (device, metric, ts, value)
_message_ts = itemgetter(2)  # of a message row (minute, device, ts, set, values...)


# psycopg's TransactionStatus.IDLE (a plain int here: psycopg is PostgreSQL's
# driver, imported only where PostgreSQL is used)
_PG_IDLE = 0


def _copy_rows(cur: Any, statement: str, rows: list[MessageRow]) -> None:
    """The message rows into a binary ``COPY`` as they are (their minute first)."""
    with cur.copy(statement) as copy:
        copy.set_types(_PG_COPY_TYPES)
        write = copy.write_row
        for row in rows:
            write(row)


# The SQLite insert takes a batch's message rows sorted by device, stably: each
# device's rows then come together, in arrival order (of two copies of one
# message the first still wins), so its part of the newest minutes is touched
# in one burst. Sorting by a whole key took ten times as long for the same
# pages: a key tuple made and compared per row (docs/benchmarks.md, "The hub
# stops making what nobody reads").
_key_of = itemgetter(1)
# SQLite checkpoints the WAL into the database when a commit leaves it longer
# than this many pages. A large batch dirties about a page per series, the same
# pages every batch; with room for a few batches between checkpoints each page
# is copied back once for several commits (+25 % rows/s at 10,000 devices,
# docs/scaling.md "Group commit"). Small batches keep SQLite's default.
_WAL_PAGES_DEFAULT, _WAL_PAGES_MAX = 1000, 262_144  # 4 MB .. 1 GB of 4 KB pages


def minutes_in(dialect: str, lo: str, hi: str, column: str = "minute") -> str:
    """SQL true when ``column`` is one of the minutes ``lo`` .. ``hi``
    (inclusive; SQL expressions, placeholders or integers) that the table
    holds at all. The telemetry key leads with the minute, so a series' range
    must be an equality per minute (an index seek each, about half a
    microsecond for a minute without the series); a range on the minute would
    step over the whole fleet's rows. The range is clamped in SQL to the
    table's first and last minute (two seeks): a series asked for "since
    1970" costs the minutes there are, not 29 million."""
    if dialect == "postgresql":
        return (f"{column} = ANY(ARRAY(SELECT generate_series("
                f"GREATEST(CAST({lo} AS bigint), COALESCE((SELECT min(minute) FROM"
                f" telemetry_message), CAST({hi} AS bigint) + 1)), LEAST(CAST({hi} AS bigint),"
                f" COALESCE((SELECT max(minute) FROM telemetry_message),"
                f" CAST({lo} AS bigint) - 1)))))")
    return (f"{column} IN (WITH RECURSIVE b(lo, hi) AS (SELECT"
            f" max({lo}, coalesce((SELECT min(minute) FROM telemetry_message), {hi} + 1)),"
            f" min({hi}, coalesce((SELECT max(minute) FROM telemetry_message), {lo} - 1))),"
            " k(x) AS (SELECT lo FROM b WHERE lo <= hi UNION ALL SELECT x + 1 FROM k, b"
            " WHERE x < b.hi) SELECT x FROM k)")


def minute_span(start_ms: int, end_ms: int) -> tuple[int, int]:
    """The first and last minute (inclusive) of readings in [start_ms, end_ms)."""
    return start_ms // MINUTE_MS, max(start_ms, end_ms - 1) // MINUTE_MS


# A metric's values in the message rows: which sets hold it, in which column.
_SETS_OF_METRIC = "SELECT metric_set, slot FROM telemetry_metric_slot WHERE metric = {p}"


def _column_of(slots: Sequence[tuple[int, int]]) -> tuple[str, str]:
    """SQL for one metric read straight from ``telemetry_message`` (not the
    view: its join costs a seek per message, a third more for a day's
    history): the value expression and the rows' filter. Nearly always one
    set holds a metric (a device type's messages), so the column itself."""
    if len(slots) == 1:
        (metric_set, slot), = slots
        return f"v{int(slot)}", f"metric_set = {int(metric_set)}"
    case = " ".join(f"WHEN {int(s)} THEN v{int(i)}" for s, i in slots)
    return (f"CASE metric_set {case} END",
            f"metric_set IN ({', '.join(str(int(s)) for s, _ in slots)})")


# No ORDER BY: the minutes are visited in ascending order and each minute's rows
# of a device come in ts order (the key), which SQLite does not know and would
# sort for (a third of a day's read); _in_ts_order checks it instead.
_RAW_QUERY = (
    "SELECT ts, {value} FROM telemetry_message WHERE " + minutes_in("sqlite", ":mlo", ":mhi")
    + " AND device_id = :d AND {sets} AND ts >= :lo AND ts < :hi"
)
#: Readings stored (each message row holds its set's width of them), for
#: benchmarks and checks that count what a run stored.
COUNT_READINGS = (
    "SELECT coalesce(sum(w.n), 0) FROM telemetry_message t JOIN (SELECT metric_set,"
    " count(*) AS n FROM telemetry_metric_slot GROUP BY metric_set) w"
    " ON w.metric_set = t.metric_set"
)


def slots_of(conn: Connection, metric: str) -> list[tuple[int, int]]:
    """(set, column) of every metric set that holds ``metric``."""
    p = "%s" if conn.dialect.name == "postgresql" else "?"
    return [(int(s), int(i)) for s, i in conn.exec_driver_sql(
        _SETS_OF_METRIC.format(p=p), (metric,)).all()]


def raw_query_sql(slots: Sequence[tuple[int, int]]) -> str:
    """The SQLite statement :meth:`SqlTelemetryStore.query` runs for a metric
    held in ``slots`` ((set, column) pairs), named parameters :mlo, :mhi, :d,
    :lo, :hi: what a benchmark times bare against the store."""
    column, sets = _column_of(slots)
    return _RAW_QUERY.format(value=column, sets=sets)


# Two bytea blobs built in the server's C code: every ts and value in binary
# send format (big-endian int8 / float8), concatenated in the subquery's order.
_RAW_BLOBS_PG = (
    "SELECT string_agg(int8send(ts), ''::bytea), string_agg(float8send(value), ''::bytea)"
    " FROM (SELECT ts, {value} AS value FROM telemetry_message WHERE "
    + minutes_in("postgresql", "%(mlo)s", "%(mhi)s").replace("{", "{{").replace("}", "}}")
    + " AND device_id = %(d)s AND {sets} AND ts >= %(lo)s AND ts < %(hi)s"
    " ORDER BY ts) AS r"
)
# Text for SQLAlchemy (named parameters on either dialect), the minutes filled in
# per dialect.
# Straight from telemetry_message with the metric's column (as the raw read):
# through the view, each message cost a seek in telemetry_metric_slot, and the
# first look at a week of 10 devices folded 2.8x slower.
_FOLD = (
    "INSERT INTO telemetry_minute (device_id, metric, minute_start, min, max, total, count)"
    " SELECT device_id, CAST(:m AS varchar(64)), minute * 60000, min({value}), max({value}),"
    " sum({value}), count(*) FROM telemetry_message WHERE {minutes} AND device_id = :d"
    " AND {sets} AND ts >= :lo AND ts < :hi GROUP BY minute, device_id ON CONFLICT DO NOTHING"
)
# Forward only, and never over a mark a late write lowered below where this
# fold started (:lo): that write deleted minutes this fold did not rebuild.
_FOLD_MARK = (
    "INSERT INTO telemetry_minute_mark (device_id, metric, until_ms) VALUES (:d, :m, :hi)"
    " ON CONFLICT (device_id, metric) DO UPDATE SET until_ms = excluded.until_ms"
    " WHERE excluded.until_ms > telemetry_minute_mark.until_ms"
    " AND telemetry_minute_mark.until_ms >= :lo"
)
# A late write's invalidation, per (series, minute) and per series (its lowest minute).
_SQLITE_UNFOLD = ("DELETE FROM telemetry_minute WHERE device_id = ? AND metric = ?"
                  " AND minute_start = ?")
_SQLITE_UNMARK = ("UPDATE telemetry_minute_mark SET until_ms = ? WHERE device_id = ?"
                  " AND metric = ? AND until_ms > ?")
_PG_UNFOLD = _SQLITE_UNFOLD.replace("?", "%s")
_PG_UNMARK = _SQLITE_UNMARK.replace("?", "%s")
# PostgreSQL: folds of a metric hold this shared, a late write exclusively, each
# until its commit (see _unfold_late).
_PG_FOLD_LOCK = "SELECT pg_advisory_xact_lock_shared(hashtext('telemetry_minute'), hashtext(%s))"
_PG_LATE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('telemetry_minute'), hashtext(%s))"

_REFOLD_MINUTE = (
    "INSERT INTO telemetry_minute (device_id, metric, minute_start, min, max, total, count)"
    " SELECT t.device_id, t.metric, :cm, min(t.value), max(t.value), sum(t.value), count(*)"
    " FROM telemetry t WHERE t.minute = :cm / 60000 AND EXISTS (SELECT 1 FROM"
    " telemetry_minute_mark k WHERE k.device_id = t.device_id AND k.metric = t.metric"
    " AND k.until_ms > :cm) GROUP BY t.device_id, t.metric"
)


def _raw_pg(raw: Any, params: dict[str, Any], column: str, sets: str
            ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """One row of two blobs read with a binary cursor, then ``np.frombuffer``:
    no per-row Python objects, every double bit for bit (the bare psycopg
    ``fetchall`` of the same rows costs ~25x the client CPU). PostgreSQL
    aggregates a sorted subquery in its order in practice but does not promise
    it, so the order is checked and, if ever needed, restored here (a series
    has one reading per ts, so sorting by ts is exact)."""
    with raw.cursor(binary=True) as cur:
        ts_blob, value_blob = cur.execute(_RAW_BLOBS_PG.format(value=column, sets=sets),
                                          params).fetchone()
    if ts_blob is None:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    ts = np.frombuffer(ts_blob, dtype=">i8").astype(np.int64)
    value = np.frombuffer(value_blob, dtype=">f8").astype(np.float64)
    if ts.size != value.size:
        raise ValueError(f"telemetry read: {ts.size} timestamps but {value.size} values")
    return _in_ts_order(ts, value)


def _in_ts_order(ts: npt.NDArray[np.int64], value: npt.NDArray[np.float64]
                 ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """A series' rows in time order: one comparison pass when they already are
    (the reads ask for no ORDER BY), a sort if ever not (a series has one
    reading per ts, so sorting by ts is exact)."""
    if ts.size > 1 and not bool((ts[1:] > ts[:-1]).all()):
        order = np.argsort(ts, kind="stable")
        ts, value = ts[order], value[order]
    return ts, value


def _newest(rows: Sequence[Row]) -> list[Row]:
    """The newest row per (device, metric), the first of equal timestamps (the
    one the telemetry table keeps): sorting ``reversed(rows)`` stably by ts puts
    that row last in its key's run, and the dict keeps the last it sees."""
    return list({(r[0], r[1]): r for r in sorted(reversed(rows), key=_ts_of)}.values())


def _unfold_late(cur: Any, rows: Sequence[Row], horizon: int,
                 unfold: str, unmark: str) -> None:
    """In the batch's transaction: the minutes its rows older than ``horizon``
    land in lose their rollup, and each such series' mark goes back to its
    lowest one, so the next fold rebuilds them from the raw rows, these
    included (a reader never takes a minute below the mark from
    ``telemetry_minute`` without folding first). The marks are read first (a
    query per metric and 500 devices) so that only minutes already folded are
    touched: a backlog nobody folded yet (a hub catching up after its own
    outage) costs those reads, not a delete per row."""
    minutes = {(d, m, ts // MINUTE_MS * MINUTE_MS) for d, m, ts, _ in rows if ts < horizon}
    low: dict[tuple[str, str], int] = {}
    for d, m, minute in minutes:
        if minute < low.get((d, m), minute + 1):
            low[(d, m)] = minute
    by_metric: dict[str, list[str]] = {}
    for d, m in low:
        by_metric.setdefault(m, []).append(d)
    p = "?" if "?" in unfold else "%s"
    marks: dict[tuple[str, str], int] = {}
    for metric, ids in by_metric.items():
        for part in chunked(sorted(ids), _IN_CHUNK):
            cur.execute(f"SELECT device_id, until_ms FROM telemetry_minute_mark WHERE metric ="
                        f" {p} AND device_id IN ({', '.join([p] * len(part))})",
                        (metric, *part))
            marks.update(((str(d), metric), int(u)) for d, u in cur.fetchall())
    if not marks:
        return
    stale = sorted(k for k in minutes if k[2] < marks.get((k[0], k[1]), k[2]))
    if stale:
        cur.executemany(unfold, stale)
    lower = [(minute, d, m, minute) for (d, m), minute in sorted(low.items())
             if minute < marks.get((d, m), minute)]
    if lower:
        cur.executemany(unmark, lower)


def _fold_params(device_id: str, metric: str, lo: int, hi: int) -> dict[str, Any]:
    """One series' parameters of ``_FOLD``: [lo, hi) and the minutes it spans."""
    first, last = minute_span(lo, hi)
    return {"d": device_id, "m": metric, "lo": lo, "hi": hi, "mlo": first, "mhi": last}


def _delete_raw_before(conn: Connection, cutoff_ms: int) -> int:
    """Raw messages before ``cutoff_ms`` (how many rows: a message is one, of
    up to eight readings): whole minutes are a range of the key's first
    column, the minute the cutoff cuts a range within it."""
    cut, m = cutoff_ms // MINUTE_MS, telemetry_message
    removed = conn.execute(delete(m).where(m.c.minute < cut)).rowcount
    removed += conn.execute(delete(m).where(m.c.minute == cut, m.c.ts < cutoff_ms)).rowcount
    return int(removed)


def _bucket_series(
    device_id: str, metric: str, rows: Sequence[Any], origin: int, bucket_ms: int
) -> Series:
    """Rows of (device, bucket index, min, max, sum, count) -> one Series.
    PostgreSQL returns SUM(bigint) as Decimal, hence the explicit conversions."""
    index = np.fromiter((int(r[1]) for r in rows), dtype=np.int64, count=len(rows))
    count = np.fromiter((int(r[5]) for r in rows), dtype=np.int64, count=len(rows))
    total = np.fromiter((float(r[4]) for r in rows), dtype=np.float64, count=len(rows))
    return Series(
        device_id,
        metric,
        ts_ms=origin + index * bucket_ms,
        value=total / np.maximum(count, 1),
        minimum=np.fromiter((float(r[2]) for r in rows), dtype=np.float64, count=len(rows)),
        maximum=np.fromiter((float(r[3]) for r in rows), dtype=np.float64, count=len(rows)),
        count=count,
        bucket_ms=bucket_ms,
    )


class SqlTelemetryStore(TelemetryStore):
    """Timestamps are epoch milliseconds (BigInteger) rather than datetimes:
    integer keys make range scans and bucket arithmetic cheap and identical on
    SQLite and PostgreSQL. Bucket starts are aligned to the epoch (like
    Timestream's ``bin()``); readings before 1970 are not supported."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        #: wall clock in epoch seconds; which minutes are old enough to fold
        self.clock: Callable[[], float] = time.time
        #: set by :meth:`defer_latest` (the hub): ``telemetry_latest`` is then
        #: flushed from memory by :meth:`flush_latest` instead of per batch
        self.latest_buffer: LatestBuffer | None = None
        self._sets = MetricSets()

    _minutes_seen = False

    def _has_minutes(self) -> bool:
        """Whether the database has the minute rollups (migration 0016): a
        store on a database not migrated yet writes late readings as before.
        Asked on late batches only, and only until the answer is yes."""
        if not self._minutes_seen:
            self._minutes_seen = inspect(self._engine).has_table("telemetry_minute_mark")
        return self._minutes_seen

    def defer_latest(self, writer: str | None = None) -> LatestBuffer:
        """From now on keep ``telemetry_latest`` in memory and write it only in
        :meth:`flush_latest` (core/store/latest_buffer.py says why and how a
        crash in between loses nothing). For the one process writing a
        database's telemetry, the hub; call :meth:`repair_latest` first."""
        if self.latest_buffer is None:
            self.latest_buffer = LatestBuffer(writer, self._sets.names_of)
        return self.latest_buffer

    def flush_latest(self) -> int:
        """Write the held latest values (one statement); rows written."""
        buffer = self.latest_buffer
        return 0 if buffer is None else buffer.flush(self._engine)

    def repair_latest(self) -> int:
        """Fold in what a writer that died between two flushes did not write to
        ``telemetry_latest``; how many such writers there were. What this
        store itself holds is flushed first (its marker is then gone)."""
        self.flush_latest()
        return repair_latest(self._engine)

    def write_batch(self, readings: Sequence[Reading]) -> int:
        """One transaction per batch, through the driver's bulk path.

        The hub writes every reading it accepts through here, so this is the
        ingest ceiling: SQLAlchemy's per-row parameter processing and
        ``RETURNING`` cost ~3x a bare ``executemany`` (bench/store_bench.py),
        so both tables are written with the driver's own bulk calls.
        SQLite gets ``INSERT OR IGNORE`` via ``executemany`` on the raw
        connection (its rowcount sums real insertions, ignored duplicates count
        0); PostgreSQL gets ``COPY`` (see :meth:`_write_pg`). ``Reading`` has
        already normalised ``ts`` to UTC, so ``round(ts.timestamp() * 1000)``
        is exactly :func:`to_epoch_ms` without re-validating every reading."""
        if not readings:
            return 0
        messages: list[MessageRow] | None = None
        rows: Sequence[Row]
        if type(readings) is RowBatch:
            rows = readings.rows_view()  # built only on the paths that read them
            if readings.covered == len(rows):
                messages = readings.messages
        elif type(readings) is ReadingBatch and len(readings.rows) == len(readings):
            rows = readings.rows
        else:
            # A message's readings share one datetime: convert each instant once.
            epoch_ms = {t: round(t.timestamp() * 1000) for t in {r.ts for r in readings}}
            rows = [(r.device_id, r.metric, epoch_ms[r.ts], r.value) for r in readings]
        messages, new = self._sets.prepare(messages, rows)
        # Readings this old may land in minutes already folded: the common case
        # (a live batch) pays one min() and this comparison, nothing else.
        oldest = min(map(_message_ts, messages))
        horizon = int(self.clock() * 1000) - FOLD_LAG_MS + LATE_MARGIN_MS
        late = oldest < horizon and self._has_minutes()
        if self._engine.dialect.name == "postgresql":
            return self._write_pg(rows, messages, new, oldest, horizon if late else None)
        buffer = self.latest_buffer
        try:
            with self._engine.begin() as conn:
                cursor = conn.connection.cursor()
                try:
                    pages = min(_WAL_PAGES_MAX, max(_WAL_PAGES_DEFAULT, len(rows)))
                    cursor.execute(f"PRAGMA wal_autocheckpoint = {pages}")
                    # Each device's rows together: its part of the newest minutes is
                    # then touched in one burst (docs/scaling.md, "The telemetry key").
                    cursor.executemany(_SQLITE_INSERT, sorted(messages, key=_key_of))
                    written = self._counted(int(cursor.rowcount), len(messages), rows)
                    self._store_sets(cursor, new, "?")
                    if late:  # under the write lock: no fold runs until commit
                        _unfold_late(cursor, rows, horizon, _SQLITE_UNFOLD, _SQLITE_UNMARK)
                    if buffer is None:
                        cursor.executemany(_SQLITE_LATEST, _newest(rows))
                    else:
                        held = buffer.note_batch(conn, messages, oldest)
                finally:
                    cursor.close()
        except BaseException:
            if buffer is not None:
                buffer.rolled_back()
            raise
        self._sets.stored |= new
        if buffer is not None:
            buffer.committed(held)
        return written

    @staticmethod
    def _counted(inserted: int, messages: int, rows: Sequence[Row]) -> int:
        """Readings written, from the message rows inserted: all of them when
        every row went in (nearly always), else the inserted rows' share of
        the readings (a redelivered message is ignored whole)."""
        if inserted >= messages:
            return len(rows)
        return round(len(rows) * inserted / messages) if messages else 0

    def _store_sets(self, cursor: Any, new: set[int], p: str) -> None:
        """In the batch's transaction: the slot rows of the sets this store
        has not written before, and a check that a set already stored under
        one of those ids holds the same metrics (a hash collision would mix
        two sets' values; it refuses the batch instead)."""
        if not new:
            return
        cursor.executemany(_SQLITE_SLOTS if p == "?" else _PG_SLOTS, self._sets.slots(new))
        for metric_set in sorted(new):
            cursor.execute(_SLOTS_OF.format(p=p), (metric_set,))
            stored = tuple(str(m) for m, _ in cursor.fetchall())
            if stored != self._sets.names_of(metric_set):
                raise ValueError(f"metric set {metric_set} is stored as {stored}, not"
                                 f" {self._sets.names_of(metric_set)}")

    def _write_pg(self, rows: Sequence[Row], messages: list[MessageRow],
                  new: set[int], oldest: int, late: int | None) -> int:
        """``COPY`` straight into ``telemetry``: the hub's batch without
        duplicates (nearly all of them) costs one COPY sent alone
        (:meth:`_copy_alone`); another writer's, one COPY and one upsert of the
        latest values in a transaction. If a key is already there (a
        redelivery), that ``COPY`` or transaction is rolled back and the batch
        goes again through a session-private staging table
        and ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` in the batch's
        order, so the first copy of a reading wins exactly as with a plain
        insert. COPY's binary format, the rows written by psycopg's C
        ``write_row`` with the column types said once: half the wall time of
        one text payload built in Python (the server parses no text, and it
        works while the rows stream), docs/benchmarks.md "PostgreSQL insert"."""
        dbapi = self._engine.dialect.dbapi
        assert dbapi is not None
        buffer = self.latest_buffer
        try:
            try:
                if (not new and late is None and buffer is not None
                        and self._copy_alone(messages, buffer, oldest)):
                    held = buffer.note_batch(None, messages, oldest)
                    written = len(rows)
                    buffer.committed(held)
                    return written
                with self._engine.begin() as conn:
                    raw = conn.connection.driver_connection
                    with raw.cursor() as cur:  # type: ignore[union-attr]
                        _copy_rows(cur, _PG_COPY, messages)
                        self._store_sets(cur, new, "%s")
                    if late is not None:
                        self._unfold_late_pg(raw, rows, late)
                    held = self._latest_pg(conn, rows, messages, oldest)
                written = len(rows)
            except dbapi.IntegrityError:
                if buffer is not None:
                    buffer.rolled_back()
                with self._engine.begin() as conn:
                    raw = conn.connection.driver_connection
                    with raw.cursor() as cur:  # type: ignore[union-attr]
                        cur.execute(_PG_STAGING)
                        _copy_rows(cur, _PG_STAGE_COPY, messages)
                        cur.execute(_PG_MERGE)
                        written = self._counted(int(cur.rowcount), len(messages), rows)
                        self._store_sets(cur, new, "%s")
                    if late is not None:
                        self._unfold_late_pg(raw, rows, late)
                    held = self._latest_pg(conn, rows, messages, oldest)
        except BaseException:
            if buffer is not None:
                buffer.rolled_back()
            raise
        self._sets.stored |= new
        if buffer is not None:
            buffer.committed(held)
        return written

    def _copy_alone(self, messages: list[MessageRow], buffer: LatestBuffer, oldest: int
                    ) -> bool:
        """The common batch of the hub (its metric sets known, nothing late)
        is its ``COPY`` and nothing else, and a ``COPY`` is atomic by itself:
        sent in autocommit it is one round trip instead of three (BEGIN, COPY,
        COMMIT). The batch after a flush must also move the latest values'
        marker: that goes first, as a statement of its own
        (:meth:`LatestBuffer.mark_ahead`). False, having written nothing, when
        the connection is not idle; a duplicate key raises as it would in a
        transaction (the ``COPY`` then left nothing)."""
        with self._engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            if raw.info.transaction_status != _PG_IDLE:
                return False
            raw.autocommit = True
            try:
                if buffer.must_mark(oldest):
                    buffer.mark_ahead(raw, oldest)
                with raw.cursor() as cur:
                    _copy_rows(cur, _PG_COPY, messages)
            finally:
                # A refused COPY (a duplicate key) leaves the connection idle; a
                # lost one leaves it unusable: dropped from the pool, and the
                # error that lost it is the one raised.
                if not raw.closed and raw.info.transaction_status == _PG_IDLE:
                    raw.autocommit = False
                else:
                    conn.invalidate()
        return True

    @staticmethod
    def _unfold_late_pg(raw: Any, rows: Sequence[Row], horizon: int
                        ) -> None:
        """The late rows' metrics locked exclusively (sorted: two late writers
        never deadlock) until this commit: a fold of them holds the same lock
        shared from before it reads the marks to its commit, so either it ran
        wholly before (its minutes and mark are visible here, and are undone)
        or it starts after this commit and sees the late rows."""
        with raw.cursor() as cur:
            for metric in sorted({r[1] for r in rows if r[2] < horizon}):
                cur.execute(_PG_LATE_LOCK, (metric,))
            _unfold_late(cur, rows, horizon, _PG_UNFOLD, _PG_UNMARK)

    def _latest_pg(self, conn: Connection, rows: Sequence[Row],
                   messages: list[MessageRow], oldest: int) -> list[MessageRow]:
        """One statement for the whole batch: four arrays, ``unnest``ed; or,
        when deferred, the batch noted for the next flush (returned)."""
        if self.latest_buffer is not None:
            return self.latest_buffer.note_batch(conn, messages, oldest)
        newest = _newest(rows)
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            cur.execute(_PG_LATEST, [list(col) for col in zip(*newest, strict=True)], binary=True)
        return []

    def query(
        self,
        device_id: str,
        metric: str,
        start: datetime,
        end: datetime,
        *,
        bucket_ms: int | None = None,
    ) -> Series:
        start_ms, end_ms = to_epoch_ms(start), to_epoch_ms(end)
        if bucket_ms is None:
            return self._raw(device_id, metric, start_ms, end_ms)
        if bucket_ms <= 0:
            raise ValidationError(f"bucket size {bucket_ms} ms must be positive")
        span = self._minute_span([device_id], metric, start_ms, end_ms, bucket_ms)
        return self._bucketed([device_id], metric, start_ms, end_ms, bucket_ms, span)[device_id]

    # -- minute rollups --------------------------------------------------------------------
    # Bucketed reads of whole minutes come from ``telemetry_minute`` (min, max,
    # sum, count per device, metric and minute), which the readers fold from the
    # raw rows the first time a range is asked for (and migration 0016 folded
    # for the data already there): a week at 1 Hz is 10,080 rows per series
    # there instead of 604,800 raw ones, which SQLite has to step and sort.
    # ``telemetry_minute_mark`` says up to when each series is folded; the
    # newest FOLD_LAG_MS stay raw. The raw rows stay too (raw history, exports).
    # Known limit: a reading stored later than FOLD_LAG_MS after its timestamp,
    # into a minute already folded, is not in that minute's rollup (the raw
    # reads have it); fold_minutes(..., refold_from=) folds such a range again.

    def _minute_span(self, device_ids: Sequence[str], metric: str, start_ms: int,
                     end_ms: int, bucket_ms: int) -> tuple[int, int]:
        """[first, end) of the whole minutes in the range that are answered from
        ``telemetry_minute``, folded first; empty when buckets are not whole
        minutes, the range is too young, or folding failed (a read-only
        database user): then every row is read raw, as before."""
        first = -(-start_ms // MINUTE_MS) * MINUTE_MS
        if bucket_ms % MINUTE_MS:
            return first, first
        until = min(end_ms, int(self.clock() * 1000) - FOLD_LAG_MS) // MINUTE_MS * MINUTE_MS
        if until <= first:
            return first, first
        try:
            self.fold_minutes(device_ids, metric, until)
        except DBAPIError as exc:
            log.warning("telemetry: minute rollups of %s not folded, reading raw rows: %s",
                        metric, exc)
            return first, first
        return first, until

    def fold_minutes(self, device_ids: Sequence[str], metric: str, until_ms: int, *,
                     refold_from: int | None = None) -> int:
        """Fold each series' raw rows before ``until_ms`` (rounded down to a
        minute) that are not folded yet into ``telemetry_minute``; how many
        series needed it. Idempotent and safe to run from several processes at
        once (``ON CONFLICT DO NOTHING``; the mark only moves forward).
        ``refold_from``: drop and fold again the minutes from there on."""
        until = until_ms // MINUTE_MS * MINUTE_MS
        ids = list(dict.fromkeys(device_ids))
        mark = telemetry_minute_mark
        with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # see _unfold_late_pg
                conn.exec_driver_sql(_PG_FOLD_LOCK, (metric,))
            folded: dict[str, int] = {}
            for part in chunked(ids, _IN_CHUNK):
                folded.update((str(d), int(u)) for d, u in conn.execute(
                    select(mark.c.device_id, mark.c.until_ms)
                    .where(mark.c.metric == metric, mark.c.device_id.in_(part))))
            target = dict.fromkeys(ids, until)
            if refold_from is not None:
                low = refold_from // MINUTE_MS * MINUTE_MS
                conn.execute(delete(_min).where(_min.c.metric == metric,
                                                _min.c.device_id.in_(ids),
                                                _min.c.minute_start >= low))
                target = {d: max(until, folded.get(d, 0)) for d in ids}
                folded = {d: min(u, low) for d, u in folded.items()}
            todo = [_fold_params(d, metric, lo, target[d])
                    for d in ids if (lo := max(folded.get(d, 0), 0)) < target[d]]
            slots = slots_of(conn, metric) if todo else []
            if slots:  # no set holds the metric: no rows to fold, the marks still move
                value, sets = _column_of(slots)
                conn.execute(text(_FOLD.format(minutes=minutes_in(
                    conn.dialect.name, ":mlo", ":mhi"), value=value, sets=sets)), todo)
            if todo:
                conn.execute(text(_FOLD_MARK), [{"d": t["d"], "m": metric, "hi": t["hi"],
                                                 "lo": t["lo"]} for t in todo])
        return len(todo)

    def fold_all_minutes(self, *, chunk: int = _IN_CHUNK) -> int:
        """Fold every series (the rows of ``telemetry_latest``) up to the fold
        horizon, a transaction per metric and ``chunk`` devices: the hub runs
        this every few minutes, so a chart after a lot of new data reads warm
        rollups instead of folding millions of rows first, and no transaction
        holds SQLite's write lock (the ingest's) for long. How many series
        needed it."""
        until = int(self.clock() * 1000) - FOLD_LAG_MS
        with self._engine.connect() as conn:
            series = conn.execute(select(_latest.c.metric, _latest.c.device_id)
                                  .order_by(_latest.c.metric, _latest.c.device_id)).all()
        by_metric: dict[str, list[str]] = {}
        for metric, device_id in series:
            by_metric.setdefault(str(metric), []).append(str(device_id))
        done = 0
        for metric, ids in by_metric.items():
            for part in chunked(ids, chunk):
                done += self.fold_minutes(list(part), metric, until)
        return done

    def _drop_minutes_before(self, conn: Connection, cutoff_ms: int) -> None:
        """After raw rows before ``cutoff_ms`` went (retention, downsampling):
        minutes wholly before it go too, and the minute it cuts is folded again
        from the rows left, so the minute rollups never count a reading that
        is no longer raw (downsampled ones are in ``telemetry_rollup``)."""
        cut = cutoff_ms // MINUTE_MS * MINUTE_MS
        conn.execute(delete(_min).where(_min.c.minute_start < cut))
        if cutoff_ms % MINUTE_MS:
            conn.execute(delete(_min).where(_min.c.minute_start == cut))
            conn.execute(text(_REFOLD_MINUTE), {"cm": cut, "cm_end": cut + MINUTE_MS})

    def _raw(self, device_id: str, metric: str, start_ms: int, end_ms: int) -> Series:
        """On the driver's cursor, no SQLAlchemy rows: a day at 1 Hz is 86,400
        rows, and per-row objects cost more than the query itself.

        PostgreSQL: two blobs aggregated by the server (see :func:`_raw_pg`),
        no per-row objects at all. SQLite hands out a tuple per row whatever one does;
        the cheapest way found to numpy (bench/store_bench.py, "History
        reads") is one flat float64 ``fromiter`` over the cursor's tuples,
        split into columns after: ~10 % less CPU than a structured ``fromiter``
        and exact, as epoch milliseconds stay far below 2**53."""
        mlo, mhi = minute_span(start_ms, end_ms)
        params = {"mlo": mlo, "mhi": mhi, "d": device_id, "lo": start_ms, "hi": end_ms}
        pg = self._engine.dialect.name == "postgresql"
        with self._engine.connect() as conn:
            slots = slots_of(conn, metric)
            if not slots:
                return Series(device_id, metric, np.empty(0, dtype=np.int64),
                              np.empty(0, dtype=np.float64))
            if pg:
                ts, value = _raw_pg(conn.connection.driver_connection, params,
                                    *_column_of(slots))
                return Series(device_id, metric, ts, value)
            cursor = conn.connection.cursor()
            try:
                cursor.execute(raw_query_sql(slots), params)
                flat = np.fromiter(chain.from_iterable(cast(Iterable[Any], cursor)),
                                   dtype=np.float64)
            finally:
                cursor.close()
        ts, value = _in_ts_order(flat[0::2].astype(np.int64), flat[1::2].copy())
        return Series(device_id, metric, ts, value)

    def query_many(
        self,
        device_ids: Sequence[str],
        metric: str,
        start: datetime,
        end: datetime,
        *,
        bucket_ms: int | None = None,
    ) -> list[Series]:
        """Bucketed on PostgreSQL: one grouped query for all devices
        (``device_id IN (...)`` ``GROUP BY device_id, bucket``), each device's
        part an index range scan on the (device_id, metric, ts) primary key.

        On SQLite the same grouped query is slower than separate ones: its
        GROUP BY sorts every row (the scan of 86,400 rows is ~6 ms, the sort
        ~50 ms, and ~90 ms per device with device_id in the sort key), and one
        query runs on one core. There, and for raw readings (where the rows are
        the cost, not the round trips), one query per device runs on a few
        threads: SQLite's C code releases the GIL."""
        ids = list(dict.fromkeys(device_ids))
        if bucket_ms is not None and bucket_ms <= 0:
            raise ValidationError(f"bucket size {bucket_ms} ms must be positive")
        if bucket_ms is None or self._engine.dialect.name == "sqlite":
            start_ms, end_ms = to_epoch_ms(start), to_epoch_ms(end)
            # Folded once for all of them: one write transaction, not one per thread.
            span = (None if bucket_ms is None
                    else self._minute_span(ids, metric, start_ms, end_ms, bucket_ms))

            def one(device_id: str) -> Series:
                if bucket_ms is None or span is None:
                    return self._raw(device_id, metric, start_ms, end_ms)
                return self._bucketed([device_id], metric, start_ms, end_ms, bucket_ms,
                                      span)[device_id]

            if len(ids) <= 1:
                answers = {d: one(d) for d in ids}
            else:
                with ThreadPoolExecutor(max_workers=min(_QUERY_THREADS, len(ids)),
                                        thread_name_prefix="telemetry") as pool:
                    answers = dict(zip(ids, pool.map(one, ids), strict=True))
            return [answers[d] for d in device_ids]
        return self.grouped_buckets(device_ids, metric, start, end, bucket_ms)

    def grouped_buckets(
        self,
        device_ids: Sequence[str],
        metric: str,
        start: datetime,
        end: datetime,
        bucket_ms: int,
    ) -> list[Series]:
        """The one-query form of bucketed :meth:`query_many`, on any dialect."""
        if bucket_ms <= 0:
            raise ValidationError(f"bucket size {bucket_ms} ms must be positive")
        ids = list(dict.fromkeys(device_ids))
        start_ms, end_ms = to_epoch_ms(start), to_epoch_ms(end)
        span = self._minute_span(ids, metric, start_ms, end_ms, bucket_ms)
        found: dict[str, Series] = {}
        for part in chunked(ids, _IN_CHUNK):
            found.update(self._bucketed(list(part), metric, start_ms, end_ms, bucket_ms, span))
        return [found[d] for d in device_ids]

    def _bucketed(
        self, device_ids: list[str], metric: str, start_ms: int, end_ms: int, bucket_ms: int,
        minutes: tuple[int, int],
    ) -> dict[str, Series]:
        """Aggregates in SQL so a month of 1 Hz data never crosses the wire raw.

        Raw rows and already-downsampled rollups (whose bucket divides the asked
        one) are combined, so charts stay whole after downsampling. ``origin`` is
        the epoch-aligned bucket at or before ``start``: offsets from it are never
        negative, so integer division floors on every backend. Every device in
        ``device_ids`` gets a Series (empty when it has no data in the range).
        ``minutes`` ([first, end), from :meth:`_minute_span`): the whole minutes
        read from ``telemetry_minute``; raw rows only before and after them,
        each an index range of its own.
        """
        origin = start_ms // bucket_ms * bucket_ms
        raw_idx = (_t.c.ts - origin) // bucket_ms
        # One device: device_id stays out of the GROUP BY. SQLite sorts every
        # row to group, and a string in the sort key made that ~1.7x slower.
        one = len(device_ids) == 1
        raw_dev = _t.c.device_id == device_ids[0] if one else _t.c.device_id.in_(device_ids)
        roll_dev = (
            _roll.c.device_id == device_ids[0] if one else _roll.c.device_id.in_(device_ids)
        )
        raw_d = literal(device_ids[0], _t.c.device_id.type) if one else _t.c.device_id
        roll_d = literal(device_ids[0], _roll.c.device_id.type) if one else _roll.c.device_id
        dialect = self._engine.dialect.name

        def raw_part(lo: int, hi: int) -> Any:
            first_minute, last_minute = minute_span(lo, hi)
            return (
                select(
                    raw_d.label("d"),
                    raw_idx.label("b"),
                    func.min(_t.c.value).label("lo"),
                    func.max(_t.c.value).label("hi"),
                    func.sum(_t.c.value).label("total"),
                    func.count().label("n"),
                )
                .where(text(minutes_in(dialect, str(first_minute), str(last_minute),
                                       "telemetry.minute")))
                .where(raw_dev, _t.c.metric == metric)
                .where(_t.c.ts >= lo, _t.c.ts < hi)
                .group_by(*([raw_idx] if one else [_t.c.device_id, raw_idx]))
            )

        first, last = minutes
        raws = ([raw_part(start_ms, end_ms)] if first >= last
                else [raw_part(start_ms, first), raw_part(last, end_ms)])
        parts_sql: list[Any] = [*raws]
        if first < last:
            min_dev = (_min.c.device_id == device_ids[0] if one
                       else _min.c.device_id.in_(device_ids))
            min_d = literal(device_ids[0], _min.c.device_id.type) if one else _min.c.device_id
            parts_sql.append(select(
                min_d.label("d"),
                ((_min.c.minute_start - origin) // bucket_ms).label("b"),
                _min.c["min"].label("lo"),
                _min.c["max"].label("hi"),
                _min.c.total.label("total"),
                _min.c["count"].label("n"),
            ).where(min_dev, _min.c.metric == metric, _min.c.minute_start >= first,
                    _min.c.minute_start < last))
        rolled = select(
            roll_d.label("d"),
            ((_roll.c.bucket_start - origin) // bucket_ms).label("b"),
            _roll.c["min"].label("lo"),
            _roll.c["max"].label("hi"),
            (_roll.c["avg"] * _roll.c["count"]).label("total"),
            _roll.c["count"].label("n"),
        ).where(
            roll_dev,
            _roll.c.metric == metric,
            _roll.c.bucket_start >= start_ms,
            _roll.c.bucket_start < end_ms,
            _roll.c.bucket_ms <= bucket_ms,
            literal(bucket_ms) % _roll.c.bucket_ms == 0,
        )
        parts = union_all(*parts_sql, rolled).subquery()
        stmt = (
            select(
                parts.c.d,
                parts.c.b,
                func.min(parts.c.lo),
                func.max(parts.c.hi),
                func.sum(parts.c.total),
                func.sum(parts.c.n),
            )
            .group_by(parts.c.d, parts.c.b)
            .order_by(parts.c.d, parts.c.b)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        out: dict[str, Series] = {}
        first = 0
        for i in range(len(rows) + 1):
            if i < len(rows) and rows[i][0] == rows[first][0]:
                continue
            if i > first:
                out[rows[first][0]] = _bucket_series(
                    rows[first][0], metric, rows[first:i], origin, bucket_ms
                )
            first = i
        for device_id in device_ids:
            if device_id not in out:
                out[device_id] = _bucket_series(device_id, metric, [], origin, bucket_ms)
        return out

    def metrics_for(self, device_id: str) -> list[str]:
        stmt = (
            select(_latest.c.metric)
            .where(_latest.c.device_id == device_id)
            .order_by(_latest.c.metric)
        )
        with self._engine.connect() as conn:
            found = list(conn.scalars(stmt))
        held = self._held(device_id)
        if held:
            found = sorted(set(found) | {row[1] for row in held})
        return found

    def _held(self, device_id: str | None = None) -> list[Row]:
        """Latest values written but not yet flushed (deferred mode; read after
        the table, so a flush in between cannot hide a value)."""
        buffer = self.latest_buffer
        return [] if buffer is None else buffer.overlay(device_id)

    def latest(self, device_id: str) -> dict[str, Reading]:
        stmt = select(_latest.c.metric, _latest.c.ts, _latest.c.value).where(
            _latest.c.device_id == device_id
        )
        with self._engine.connect() as conn:
            found = {metric: (int(ts), float(value)) for metric, ts, value in conn.execute(stmt)}
        for _, metric, ts, value in self._held(device_id):
            seen = found.get(metric)
            if seen is None or ts > seen[0]:
                found[metric] = (ts, value)
        return {
            metric: Reading(device_id, metric, from_epoch_ms(ts), value)
            for metric, (ts, value) in found.items()
        }

    def latest_values(self, metrics: Sequence[str]) -> dict[str, dict[str, float]]:
        """One scan of ``telemetry_latest`` (one row per device and metric),
        never a query per device; values held for the next flush on top."""
        wanted = sorted(set(metrics))
        if not wanted:
            return {}
        stmt = select(_latest.c.device_id, _latest.c.metric, _latest.c.ts,
                      _latest.c.value).where(_latest.c.metric.in_(wanted))
        out: dict[str, dict[str, float]] = {}
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        held = self._held()
        if not held:
            for device_id, metric, _ts, value in rows:
                out.setdefault(device_id, {})[metric] = float(value)
            return out
        newest: dict[tuple[str, str], tuple[int, float]] = {
            (d, m): (int(t), float(v)) for d, m, t, v in rows}
        chosen = set(wanted)
        for device_id, metric, ts, value in held:
            if metric in chosen:
                seen = newest.get((device_id, metric))
                if seen is None or ts > seen[0]:
                    newest[(device_id, metric)] = (ts, value)
        for (device_id, metric), (_ts, value) in newest.items():
            out.setdefault(device_id, {})[metric] = value
        return out

    def latest_values_of(self, metrics: Sequence[str],
                         device_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """The rows of these devices only (its primary key: device, metric),
        values held for the next flush on top: a page of the device list costs
        a page of rows, not the fleet's."""
        wanted, ids = sorted(set(metrics)), sorted(set(device_ids))
        if not wanted or not ids:
            return {}
        newest: dict[tuple[str, str], tuple[int, float]] = {}
        with self._engine.connect() as conn:
            for part in chunked(ids, _IN_CHUNK):
                for d, m, t, v in conn.execute(
                        select(_latest.c.device_id, _latest.c.metric, _latest.c.ts,
                               _latest.c.value).where(_latest.c.device_id.in_(part),
                                                      _latest.c.metric.in_(wanted))):
                    newest[(d, m)] = (int(t), float(v))
        chosen, among = set(wanted), set(ids)
        for device_id, metric, ts, value in self._held():
            if metric in chosen and device_id in among:
                seen = newest.get((device_id, metric))
                if seen is None or ts > seen[0]:
                    newest[(device_id, metric)] = (ts, value)
        out: dict[str, dict[str, float]] = {}
        for (device_id, metric), (_ts, value) in newest.items():
            out.setdefault(device_id, {})[metric] = value
        return out

    def reporting_devices(
        self, start: datetime, end: datetime, *, bucket_ms: int, metric: str
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """COUNT(DISTINCT device) per bucket in SQL; only raw rows count (a
        downsampled hour says a device reported, not when within the bucket).

        Whole-minute buckets count the whole minutes older than an hour from
        ``telemetry_minute`` (a device with a rollup row reported in that
        minute; folded first, as the bucketed reads do), and only the partial
        minutes and the newest hour from raw rows: a week of a busy fleet was
        tens of seconds of raw scan. The series to fold are the metric's rows
        of ``telemetry_latest``, which every series that has raw rows has."""
        if bucket_ms <= 0:
            raise ValidationError(f"bucket size {bucket_ms} ms must be positive")
        start_ms, end_ms = to_epoch_ms(start), to_epoch_ms(end)
        origin = start_ms // bucket_ms * bucket_ms
        first = last = start_ms
        if bucket_ms % MINUTE_MS == 0:
            with self._engine.connect() as conn:
                ids = list(conn.scalars(select(_latest.c.device_id)
                                        .where(_latest.c.metric == metric)))
            if ids:
                first, last = self._minute_span(ids, metric, start_ms, end_ms, bucket_ms)
        idx = (_t.c.ts - origin) // bucket_ms
        parts: list[Any] = [
            select(_t.c.device_id.label("d"), idx.label("b"))
            .where(_t.c.minute.between(*minute_span(lo, hi)),
                   _t.c.metric == metric, _t.c.ts >= lo, _t.c.ts < hi)
            for lo, hi in ([(start_ms, end_ms)] if first >= last
                           else [(start_ms, first), (last, end_ms)])]
        if first < last:
            parts.append(select(_min.c.device_id.label("d"),
                                ((_min.c.minute_start - origin) // bucket_ms).label("b"))
                         .where(_min.c.metric == metric, _min.c.minute_start >= first,
                                _min.c.minute_start < last))
        both = union_all(*parts).subquery()
        stmt = (select(both.c.b, func.count(func.distinct(both.c.d)))
                .group_by(both.c.b).order_by(both.c.b))
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return (
            np.array([origin + int(r[0]) * bucket_ms for r in rows], dtype=np.int64),
            np.array([int(r[1]) for r in rows], dtype=np.int64),
        )

    def delete_before(self, cutoff: datetime) -> int:
        """Raw rows only; ``telemetry_latest`` keeps the last known value even
        when the history behind it has expired."""
        cutoff_ms = to_epoch_ms(cutoff)
        with self._engine.begin() as conn:
            removed = _delete_raw_before(conn, cutoff_ms)
            self._drop_minutes_before(conn, cutoff_ms)
        return int(removed)

    def downsample_before(self, cutoff: datetime, bucket_ms: int) -> int:
        """The cutoff is rounded down to a bucket boundary so only complete
        buckets are folded; a late reading for an already-folded bucket is
        merged into the existing rollup row instead of colliding with it."""
        if bucket_ms <= 0:
            raise ValidationError(f"bucket size {bucket_ms} ms must be positive")
        cutoff_ms = to_epoch_ms(cutoff) // bucket_ms * bucket_ms
        bucket = (_t.c.ts // bucket_ms) * bucket_ms
        folded = (
            select(
                _t.c.device_id,
                _t.c.metric,
                literal(bucket_ms).label("bucket_ms"),
                bucket.label("bucket_start"),
                func.min(_t.c.value),
                func.avg(_t.c.value),
                func.max(_t.c.value),
                func.count(),
            )
            .where(_t.c.minute <= (cutoff_ms - 1) // MINUTE_MS, _t.c.ts < cutoff_ms)
            .group_by(_t.c.device_id, _t.c.metric, bucket)
        )
        with self._engine.begin() as conn:
            ins = dialect_insert(conn.dialect.name, _roll).from_select(
                ["device_id", "metric", "bucket_ms", "bucket_start", "min", "avg", "max", "count"],
                folded,
            )
            old, new = _roll.c, ins.excluded
            both = old["count"] + new["count"]
            stmt = on_conflict_update(
                ins,
                {
                    "min": case((new["min"] < old["min"], new["min"]), else_=old["min"]),
                    "max": case((new["max"] > old["max"], new["max"]), else_=old["max"]),
                    "avg": (old["avg"] * old["count"] + new["avg"] * new["count"]) / both,
                    "count": both,
                },
            )
            written = len(conn.execute(stmt.returning(_roll.c.bucket_start)).all())
            _delete_raw_before(conn, cutoff_ms)
            self._drop_minutes_before(conn, cutoff_ms)
        return int(written)
