"""Telemetry history in Amazon Timestream for LiveAnalytics, as the seed
designed it: one record per reading, ``device_id`` the dimension, the metric
the measure name, and the READING's time (not the time of writing).

Statements are built only from names that passed the protocol's patterns
(plugins.aws.telemetry.names), and even then put in as quoted literals, so no
id can change a statement's meaning. Answers are read page by page
(NextToken) and parsed by :func:`parse_rows` from Timestream's own shape
(ColumnInfo, Rows/Data/ScalarValue). Timestream closed to new customers in
2025: new accounts use the DynamoDB layout (docs/aws.md, Telemetry)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from core.errors import SmartIotError, ValidationError
from core.model import Reading
from core.model.timeutil import from_epoch_ms
from core.ports.telemetry import Series, TelemetryStore
from plugins.aws.settings import AwsSettings
from plugins.aws.telemetry import names

log = logging.getLogger(__name__)

_RECORDS_PER_WRITE = 100  # WriteRecords' limit
TABLE = "readings"


class TimestreamAnswerError(SmartIotError):
    """Timestream answered in a shape this adapter did not ask for."""


def literal(value: str) -> str:
    """A Timestream string literal. Callers pass validated names only (no
    quote can reach here); doubling quotes keeps it safe even if one did."""
    return "'" + value.replace("'", "''") + "'"


def identifier(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


# ----------------------------------------------------------------- parsing

def _scalar(kind: str, text: str) -> Any:
    if kind in ("BIGINT", "INTEGER"):
        return int(text)
    if kind == "DOUBLE":
        return float(text)
    if kind == "BOOLEAN":
        return text.lower() == "true"
    if kind == "TIMESTAMP":
        # "2024-09-01 00:00:01.500000000": nanoseconds, which datetime cannot hold
        day_time, _, fraction = text.partition(".")
        moment = datetime.strptime(day_time, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        return moment.replace(microsecond=int((fraction or "0").ljust(9, "0")[:6]))
    return text  # VARCHAR, DATE, TIME, INTERVAL_*: as Timestream wrote them


def parse_rows(page: dict[str, Any]) -> list[dict[str, Any]]:
    """One page of a Query answer as rows of column name -> Python value
    (NullValue -> None). Only scalar columns are expected: the statements
    here select no time series, arrays or rows."""
    columns = page.get("ColumnInfo", [])
    kinds: list[tuple[str, str]] = []
    for column in columns:
        kind = column.get("Type", {}).get("ScalarType")
        if kind is None:
            raise TimestreamAnswerError(
                f"Timestream column {column.get('Name')!r} is not a scalar "
                f"({sorted(column.get('Type', {}))}); this adapter asks for scalars only")
        kinds.append((str(column["Name"]), str(kind)))
    rows = []
    for row in page.get("Rows", []):
        data = row.get("Data", [])
        if len(data) != len(kinds):
            raise TimestreamAnswerError(
                f"Timestream row has {len(data)} values for {len(kinds)} columns")
        rows.append({name: None if datum.get("NullValue") else _scalar(kind, datum["ScalarValue"])
                     for (name, kind), datum in zip(kinds, data, strict=True)})
    return rows


# -------------------------------------------------------------- statements

class Statements:
    """The adapter's SQL, one method per question, from validated names only."""

    def __init__(self, database: str, table: str) -> None:
        self.source = f"{identifier(database)}.{identifier(table)}"

    def _series(self, device_id: str, metric: str) -> str:
        return (f"device_id = {literal(names.device(device_id))} "
                f"AND measure_name = {literal(names.metric(metric))}")

    def raw(self, device_id: str, metric: str, start_ms: int, end_ms: int) -> str:
        return (f"SELECT to_milliseconds(time) AS ts_ms, measure_value::double AS value "
                f"FROM {self.source} WHERE {self._series(device_id, metric)} "
                f"AND time >= from_milliseconds({int(start_ms)}) "
                f"AND time < from_milliseconds({int(end_ms)}) ORDER BY time")

    def buckets(self, device_id: str, metric: str, start_ms: int, end_ms: int,
                bucket_ms: int) -> str:
        """``bin()`` aligns to the epoch, as the SQL store's buckets do."""
        binned = f"bin(time, {int(bucket_ms)}ms)"
        return (f"SELECT to_milliseconds({binned}) AS bucket_ms, "
                f"min(measure_value::double) AS lo, max(measure_value::double) AS hi, "
                f"sum(measure_value::double) AS total, count(*) AS n "
                f"FROM {self.source} WHERE {self._series(device_id, metric)} "
                f"AND time >= from_milliseconds({int(start_ms)}) "
                f"AND time < from_milliseconds({int(end_ms)}) "
                f"GROUP BY {binned} ORDER BY bucket_ms")

    def latest(self, device_id: str) -> str:
        return (f"SELECT measure_name, to_milliseconds(max(time)) AS ts_ms, "
                f"max_by(measure_value::double, time) AS value FROM {self.source} "
                f"WHERE device_id = {literal(names.device(device_id))} "
                f"GROUP BY measure_name ORDER BY measure_name")

    def latest_values(self, metrics: Sequence[str]) -> str:
        wanted = ", ".join(literal(names.metric(m)) for m in sorted(set(metrics)))
        return (f"SELECT device_id, measure_name, max_by(measure_value::double, time) AS value "
                f"FROM {self.source} WHERE measure_name IN ({wanted}) "
                f"GROUP BY device_id, measure_name")


# ------------------------------------------------------------------ adapter

class TimestreamTelemetryStore(TelemetryStore):
    def __init__(self, write_client: Any, query_client: Any, settings: AwsSettings, *,
                 table: str = TABLE) -> None:
        self._write = write_client
        self._query = query_client
        self.database = settings.table("telemetry")  # iot-telemetry-<stage>, as the seed
        self.table = table
        self._rows_per_page = min(settings.page_size, 1000)
        self.statements = Statements(self.database, table)

    def write_batch(self, readings: Sequence[Reading]) -> int:
        """Records carry the reading's time in milliseconds. A record Timestream
        already has with another value is rejected (ExistingVersion) and not
        counted: the first write wins, as on the SQL store; an identical one is
        accepted again (Timestream's idempotence) and counts."""
        records: dict[tuple[str, str, int], dict[str, Any]] = {}
        for r in readings:
            device_id, metric = names.device(r.device_id), names.metric(r.metric)
            ts_ms = round(r.ts.timestamp() * 1000)
            records.setdefault((device_id, metric, ts_ms), {
                "Dimensions": [{"Name": "device_id", "Value": device_id,
                                "DimensionValueType": "VARCHAR"}],
                "MeasureName": metric, "MeasureValue": repr(float(r.value)),
                "MeasureValueType": "DOUBLE", "Time": str(ts_ms), "TimeUnit": "MILLISECONDS"})
        batch = list(records.values())
        written = 0
        for i in range(0, len(batch), _RECORDS_PER_WRITE):
            chunk = batch[i:i + _RECORDS_PER_WRITE]
            try:
                self._write.write_records(DatabaseName=self.database, TableName=self.table,
                                          Records=chunk)
                written += len(chunk)
            except self._write.exceptions.RejectedRecordsException as exc:
                rejected = exc.response.get("RejectedRecords", [])
                for record in rejected:
                    if "ExistingVersion" not in record:
                        log.warning("timestream rejected a reading: %s", record.get("Reason"))
                written += len(chunk) - len(rejected)
        return written

    def _pages(self, statement: str) -> Iterator[dict[str, Any]]:
        """Every page of the answer: Timestream hands a NextToken back (also
        with an empty page while a query still runs) until the last."""
        token: str | None = None
        while True:
            request: dict[str, Any] = {"QueryString": statement, "MaxRows": self._rows_per_page}
            if token:
                request["NextToken"] = token
            page = self._query.query(**request)
            yield page
            token = page.get("NextToken")
            if not token:
                return

    def rows(self, statement: str) -> list[dict[str, Any]]:
        return [row for page in self._pages(statement) for row in parse_rows(page)]

    def query(self, device_id: str, metric: str, start: datetime, end: datetime, *,
              bucket_ms: int | None = None) -> Series:
        names.device(device_id)
        names.metric(metric)
        bucket_ms = names.bucket(bucket_ms)
        start_ms, end_ms = names.span(start, end)
        if bucket_ms is None:
            rows = self.rows(self.statements.raw(device_id, metric, start_ms, end_ms))
            return Series(device_id, metric,
                          np.asarray([r["ts_ms"] for r in rows], dtype=np.int64),
                          np.asarray([r["value"] for r in rows], dtype=np.float64))
        rows = self.rows(self.statements.buckets(device_id, metric, start_ms, end_ms, bucket_ms))
        count = np.asarray([r["n"] for r in rows], dtype=np.int64)
        return Series(device_id, metric,
                      ts_ms=np.asarray([r["bucket_ms"] for r in rows], dtype=np.int64),
                      value=np.asarray([r["total"] for r in rows], dtype=np.float64)
                      / np.maximum(count, 1),
                      minimum=np.asarray([r["lo"] for r in rows], dtype=np.float64),
                      maximum=np.asarray([r["hi"] for r in rows], dtype=np.float64),
                      count=count, bucket_ms=bucket_ms)

    def latest(self, device_id: str) -> dict[str, Reading]:
        return {r["measure_name"]: Reading(device_id, r["measure_name"],
                                           from_epoch_ms(r["ts_ms"]), r["value"])
                for r in self.rows(self.statements.latest(device_id))}

    def metrics_for(self, device_id: str) -> list[str]:
        return sorted(self.latest(device_id))

    def latest_values(self, metrics: Sequence[str]) -> dict[str, dict[str, float]]:
        if not metrics:
            return {}
        out: dict[str, dict[str, float]] = {}
        for r in self.rows(self.statements.latest_values(metrics)):
            out.setdefault(r["device_id"], {})[r["measure_name"]] = float(r["value"])
        return out

    def delete_before(self, cutoff: datetime) -> int:
        raise ValidationError(
            "Timestream deletes by its table's retention (memory and magnetic store "
            "periods), not by a delete job; see docs/aws.md, Telemetry")

    def downsample_before(self, cutoff: datetime, bucket_ms: int) -> int:
        """Nothing to fold: Timestream aggregates at query time (``bin()``)."""
        names.bucket(bucket_ms)
        return 0
