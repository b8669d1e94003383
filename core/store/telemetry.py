"""SQL telemetry store: Core bulk inserts in, numpy column arrays out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, case, delete, func, literal, select, union_all
from sqlalchemy.engine import Connection

from core.errors import ValidationError
from core.model import Reading
from core.model.timeutil import from_epoch_ms, to_epoch_ms
from core.ports.telemetry import Series, TelemetryStore
from core.store._sql import (
    chunked,
    dialect_insert,
    insert_ignoring_duplicates,
    on_conflict_update,
)
from core.store.schema import telemetry, telemetry_latest, telemetry_rollup

_t, _latest, _roll = telemetry, telemetry_latest, telemetry_rollup


class SqlTelemetryStore(TelemetryStore):
    """Timestamps are epoch milliseconds (BigInteger) rather than datetimes:
    integer keys make range scans and bucket arithmetic cheap and identical on
    SQLite and PostgreSQL. Bucket starts are aligned to the epoch (like
    Timestream's ``bin()``); readings before 1970 are not supported."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def write_batch(self, readings: Sequence[Reading]) -> int:
        if not readings:
            return 0
        rows = [
            {
                "device_id": r.device_id,
                "metric": r.metric,
                "ts": to_epoch_ms(r.ts),
                "value": r.value,
            }
            for r in readings
        ]
        written = 0
        with self._engine.begin() as conn:
            stmt = insert_ignoring_duplicates(conn.dialect.name, _t)
            for part in chunked(rows, 2000):
                # RETURNING yields only rows actually inserted, so duplicates are
                # not counted; executemany rowcounts are unreliable across drivers.
                written += len(conn.execute(stmt.returning(_t.c.ts), part).all())
            self._update_latest(conn, rows)
        return written

    @staticmethod
    def _update_latest(conn: Connection, rows: list[dict[str, Any]]) -> None:
        newest: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            key = (row["device_id"], row["metric"])
            if key not in newest or row["ts"] > newest[key]["ts"]:
                newest[key] = row
        ins = dialect_insert(conn.dialect.name, _latest)
        stmt = on_conflict_update(
            ins,
            {"ts": ins.excluded.ts, "value": ins.excluded.value},
            where=ins.excluded.ts > _latest.c.ts,
        )
        conn.execute(stmt, list(newest.values()))

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
        return self._bucketed(device_id, metric, start_ms, end_ms, bucket_ms)

    def _raw(self, device_id: str, metric: str, start_ms: int, end_ms: int) -> Series:
        stmt = (
            select(_t.c.ts, _t.c.value)
            .where(_t.c.device_id == device_id, _t.c.metric == metric)
            .where(_t.c.ts >= start_ms, _t.c.ts < end_ms)
            .order_by(_t.c.ts)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return Series(
            device_id,
            metric,
            np.array([r[0] for r in rows], dtype=np.int64),
            np.array([r[1] for r in rows], dtype=np.float64),
        )

    def _bucketed(
        self, device_id: str, metric: str, start_ms: int, end_ms: int, bucket_ms: int
    ) -> Series:
        """Aggregates in SQL so a month of 1 Hz data never crosses the wire raw.

        Raw rows and already-downsampled rollups (whose bucket divides the asked
        one) are combined, so charts stay whole after downsampling. ``origin`` is
        the epoch-aligned bucket at or before ``start``: offsets from it are never
        negative, so integer division floors on every backend.
        """
        origin = start_ms // bucket_ms * bucket_ms
        raw_idx = (_t.c.ts - origin) // bucket_ms
        raw = (
            select(
                raw_idx.label("b"),
                func.min(_t.c.value).label("lo"),
                func.max(_t.c.value).label("hi"),
                func.sum(_t.c.value).label("total"),
                func.count().label("n"),
            )
            .where(_t.c.device_id == device_id, _t.c.metric == metric)
            .where(_t.c.ts >= start_ms, _t.c.ts < end_ms)
            .group_by(raw_idx)
        )
        rolled = select(
            ((_roll.c.bucket_start - origin) // bucket_ms).label("b"),
            _roll.c["min"].label("lo"),
            _roll.c["max"].label("hi"),
            (_roll.c["avg"] * _roll.c["count"]).label("total"),
            _roll.c["count"].label("n"),
        ).where(
            _roll.c.device_id == device_id,
            _roll.c.metric == metric,
            _roll.c.bucket_start >= start_ms,
            _roll.c.bucket_start < end_ms,
            _roll.c.bucket_ms <= bucket_ms,
            literal(bucket_ms) % _roll.c.bucket_ms == 0,
        )
        parts = union_all(raw, rolled).subquery()
        stmt = (
            select(
                parts.c.b,
                func.min(parts.c.lo),
                func.max(parts.c.hi),
                func.sum(parts.c.total),
                func.sum(parts.c.n),
            )
            .group_by(parts.c.b)
            .order_by(parts.c.b)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        count = np.array([int(r[4]) for r in rows], dtype=np.int64)
        total = np.array([float(r[3]) for r in rows], dtype=np.float64)
        return Series(
            device_id,
            metric,
            ts_ms=np.array([origin + int(r[0]) * bucket_ms for r in rows], dtype=np.int64),
            value=total / np.maximum(count, 1),
            minimum=np.array([float(r[1]) for r in rows], dtype=np.float64),
            maximum=np.array([float(r[2]) for r in rows], dtype=np.float64),
            count=count,
            bucket_ms=bucket_ms,
        )

    def metrics_for(self, device_id: str) -> list[str]:
        stmt = (
            select(_latest.c.metric)
            .where(_latest.c.device_id == device_id)
            .order_by(_latest.c.metric)
        )
        with self._engine.connect() as conn:
            return list(conn.scalars(stmt))

    def latest(self, device_id: str) -> dict[str, Reading]:
        stmt = select(_latest.c.metric, _latest.c.ts, _latest.c.value).where(
            _latest.c.device_id == device_id
        )
        with self._engine.connect() as conn:
            return {
                metric: Reading(device_id, metric, from_epoch_ms(ts), value)
                for metric, ts, value in conn.execute(stmt)
            }

    def latest_values(self, metrics: Sequence[str]) -> dict[str, dict[str, float]]:
        """One scan of ``telemetry_latest`` (one row per device and metric),
        never a query per device."""
        wanted = sorted(set(metrics))
        if not wanted:
            return {}
        stmt = select(_latest.c.device_id, _latest.c.metric, _latest.c.value).where(
            _latest.c.metric.in_(wanted)
        )
        out: dict[str, dict[str, float]] = {}
        with self._engine.connect() as conn:
            for device_id, metric, value in conn.execute(stmt):
                out.setdefault(device_id, {})[metric] = float(value)
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
