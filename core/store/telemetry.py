"""SQL telemetry store: Core bulk inserts in, numpy column arrays out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from operator import itemgetter
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, case, delete, func, literal, select, union_all
from sqlalchemy.engine import Connection

from core.errors import ValidationError
from core.ingest.batch import ReadingBatch
from core.model import Reading
from core.model.timeutil import from_epoch_ms, to_epoch_ms
from core.ports.telemetry import Series, TelemetryStore
from core.store._sql import (
    chunked,
    dialect_insert,
    on_conflict_update,
)
from core.store.latest_buffer import LatestBuffer, repair_latest
from core.store.schema import telemetry, telemetry_latest, telemetry_rollup

_t, _latest, _roll = telemetry, telemetry_latest, telemetry_rollup
_IN_CHUNK = 500  # devices per grouped query (bound parameters stay far below limits)
_QUERY_THREADS = 4
_SQLITE_INSERT = (
    "INSERT OR IGNORE INTO telemetry (device_id, metric, ts, value) VALUES (?, ?, ?, ?)"
)
_PG_COPY = "COPY telemetry (device_id, metric, ts, value) FROM STDIN"
# Per session; ON COMMIT DELETE ROWS empties it with each batch's transaction
# (a rolled-back batch takes its rows, or the table, with it); n keeps the order.
_PG_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS telemetry_staging (n bigserial,"
    " device_id varchar(128) NOT NULL, metric varchar(64) NOT NULL,"
    " ts bigint NOT NULL, value double precision NOT NULL)"
    " ON COMMIT DELETE ROWS"
)
_PG_STAGE_COPY = "COPY telemetry_staging (device_id, metric, ts, value) FROM STDIN"
_PG_MERGE = (
    "INSERT INTO telemetry (device_id, metric, ts, value)"
    " SELECT device_id, metric, ts, value FROM telemetry_staging ORDER BY n"
    " ON CONFLICT DO NOTHING"
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
_ts_of = itemgetter(2)
_RAW_QUERY = (
    "SELECT ts, value FROM telemetry WHERE device_id = ? AND metric = ?"
    " AND ts >= ? AND ts < ? ORDER BY ts"
)
_RAW_QUERY_PG = _RAW_QUERY.replace("?", "%s")
_RAW_DTYPE = np.dtype([("ts", np.int64), ("value", np.float64)])


def _newest(rows: list[tuple[str, str, int, float]]) -> list[tuple[str, str, int, float]]:
    """The newest row per (device, metric), the first of equal timestamps (the
    one the telemetry table keeps): sorting ``reversed(rows)`` stably by ts puts
    that row last in its key's run, and the dict keeps the last it sees."""
    return list({(r[0], r[1]): r for r in sorted(reversed(rows), key=_ts_of)}.values())


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
        #: set by :meth:`defer_latest` (the hub): ``telemetry_latest`` is then
        #: flushed from memory by :meth:`flush_latest` instead of per batch
        self.latest_buffer: LatestBuffer | None = None

    def defer_latest(self, writer: str | None = None) -> LatestBuffer:
        """From now on keep ``telemetry_latest`` in memory and write it only in
        :meth:`flush_latest` (core/store/latest_buffer.py says why and how a
        crash in between loses nothing). For the one process writing a
        database's telemetry, the hub; call :meth:`repair_latest` first."""
        if self.latest_buffer is None:
            self.latest_buffer = LatestBuffer(writer)
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
        if type(readings) is ReadingBatch and len(readings.rows) == len(readings):
            rows = readings.rows
        else:
            # A message's readings share one datetime: convert each instant once.
            epoch_ms = {t: round(t.timestamp() * 1000) for t in {r.ts for r in readings}}
            rows = [(r.device_id, r.metric, epoch_ms[r.ts], r.value) for r in readings]
        if self._engine.dialect.name == "postgresql":
            return self._write_pg(rows)
        buffer = self.latest_buffer
        try:
            with self._engine.begin() as conn:
                cursor = conn.connection.cursor()
                try:
                    cursor.executemany(_SQLITE_INSERT, rows)
                    written = int(cursor.rowcount)
                    if buffer is None:
                        cursor.executemany(_SQLITE_LATEST, _newest(rows))
                    else:
                        held = buffer.note_batch(conn, rows)
                finally:
                    cursor.close()
        except BaseException:
            if buffer is not None:
                buffer.rolled_back()
            raise
        if buffer is not None:
            buffer.committed(held)
        return written

    def _write_pg(self, rows: list[tuple[str, str, int, float]]) -> int:
        """``COPY`` straight into ``telemetry``: a batch without duplicates
        (nearly all of them) costs one COPY and one upsert of the latest values.
        If a key is already there (a redelivery), that transaction is rolled
        back and the batch goes again through a session-private staging table
        and ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` in the batch's
        order, so the first copy of a reading wins exactly as with a plain
        insert. The COPY text is built in one piece: device ids and metric names
        are validated to characters that need no escaping in COPY's text format,
        and ``repr`` of a finite float reads back as the same double."""
        data = "".join([f"{d}\t{m}\t{ts}\t{v!r}\n" for d, m, ts, v in rows])
        dbapi = self._engine.dialect.dbapi
        assert dbapi is not None
        buffer = self.latest_buffer
        try:
            try:
                with self._engine.begin() as conn:
                    raw = conn.connection.driver_connection
                    with raw.cursor() as cur, cur.copy(_PG_COPY) as copy:  # type: ignore[union-attr]
                        copy.write(data)
                    held = self._latest_pg(conn, rows)
                written = len(rows)
            except dbapi.IntegrityError:
                if buffer is not None:
                    buffer.rolled_back()
                with self._engine.begin() as conn:
                    raw = conn.connection.driver_connection
                    with raw.cursor() as cur:  # type: ignore[union-attr]
                        cur.execute(_PG_STAGING)
                        with cur.copy(_PG_STAGE_COPY) as copy:
                            copy.write(data)
                        cur.execute(_PG_MERGE)
                        written = int(cur.rowcount)
                    held = self._latest_pg(conn, rows)
        except BaseException:
            if buffer is not None:
                buffer.rolled_back()
            raise
        if buffer is not None:
            buffer.committed(held)
        return written

    def _latest_pg(self, conn: Connection, rows: list[tuple[str, str, int, float]]
                   ) -> list[tuple[str, str, int, float]]:
        """One statement for the whole batch: four arrays, ``unnest``ed; or,
        when deferred, the batch noted for the next flush (returned)."""
        if self.latest_buffer is not None:
            return self.latest_buffer.note_batch(conn, rows)
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
        return self._bucketed([device_id], metric, start_ms, end_ms, bucket_ms)[device_id]

    def _raw(self, device_id: str, metric: str, start_ms: int, end_ms: int) -> Series:
        """On the driver's cursor, straight into one structured numpy array: a
        day at 1 Hz is 86,400 rows, and SQLAlchemy's Row objects and a list of
        them cost more than the query itself."""
        sql = _RAW_QUERY if self._engine.dialect.paramstyle == "qmark" else _RAW_QUERY_PG
        with self._engine.connect() as conn:
            cursor = conn.connection.cursor()
            try:
                cursor.execute(sql, (device_id, metric, start_ms, end_ms))
                data = np.fromiter(cast(Iterable[Any], cursor), dtype=_RAW_DTYPE)
            finally:
                cursor.close()
        return Series(
            device_id, metric, np.ascontiguousarray(data["ts"]),
            np.ascontiguousarray(data["value"]),
        )

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
            with ThreadPoolExecutor(max_workers=max(1, min(_QUERY_THREADS, len(ids))),
                                    thread_name_prefix="telemetry") as pool:
                answers = dict(zip(ids, pool.map(
                    lambda d: self.query(d, metric, start, end, bucket_ms=bucket_ms), ids),
                    strict=True))
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
        found: dict[str, Series] = {}
        for part in chunked(ids, _IN_CHUNK):
            found.update(self._bucketed(list(part), metric, start_ms, end_ms, bucket_ms))
        return [found[d] for d in device_ids]

    def _bucketed(
        self, device_ids: list[str], metric: str, start_ms: int, end_ms: int, bucket_ms: int
    ) -> dict[str, Series]:
        """Aggregates in SQL so a month of 1 Hz data never crosses the wire raw.

        Raw rows and already-downsampled rollups (whose bucket divides the asked
        one) are combined, so charts stay whole after downsampling. ``origin`` is
        the epoch-aligned bucket at or before ``start``: offsets from it are never
        negative, so integer division floors on every backend. Every device in
        ``device_ids`` gets a Series (empty when it has no data in the range).
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
        raw = (
            select(
                raw_d.label("d"),
                raw_idx.label("b"),
                func.min(_t.c.value).label("lo"),
                func.max(_t.c.value).label("hi"),
                func.sum(_t.c.value).label("total"),
                func.count().label("n"),
            )
            .where(raw_dev, _t.c.metric == metric)
            .where(_t.c.ts >= start_ms, _t.c.ts < end_ms)
            .group_by(*([raw_idx] if one else [_t.c.device_id, raw_idx]))
        )
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
        parts = union_all(raw, rolled).subquery()
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

    def _held(self, device_id: str | None = None) -> list[tuple[str, str, int, float]]:
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

    def reporting_devices(
        self, start: datetime, end: datetime, *, bucket_ms: int, metric: str
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """COUNT(DISTINCT device) per bucket in SQL; only raw rows count (a
        downsampled hour says a device reported, not when within the bucket)."""
        if bucket_ms <= 0:
            raise ValidationError(f"bucket size {bucket_ms} ms must be positive")
        start_ms, end_ms = to_epoch_ms(start), to_epoch_ms(end)
        origin = start_ms // bucket_ms * bucket_ms
        idx = (_t.c.ts - origin) // bucket_ms
        stmt = (
            select(idx, func.count(func.distinct(_t.c.device_id)))
            .where(_t.c.metric == metric, _t.c.ts >= start_ms, _t.c.ts < end_ms)
            .group_by(idx)
            .order_by(idx)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return (
            np.array([origin + int(r[0]) * bucket_ms for r in rows], dtype=np.int64),
            np.array([int(r[1]) for r in rows], dtype=np.int64),
        )

    def delete_before(self, cutoff: datetime) -> int:
        """Raw rows only; ``telemetry_latest`` keeps the last known value even
        when the history behind it has expired."""
        with self._engine.begin() as conn:
            return conn.execute(delete(_t).where(_t.c.ts < to_epoch_ms(cutoff))).rowcount

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
            .where(_t.c.ts < cutoff_ms)
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
            conn.execute(delete(_t).where(_t.c.ts < cutoff_ms))
        return int(written)
