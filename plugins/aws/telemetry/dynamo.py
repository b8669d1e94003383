"""Telemetry history in DynamoDB, laid out as a time series.

* ``iot-telemetry-<stage>``: one partition per device, metric and UTC day
  (``series_day`` = ``{device_id}#{metric}#{yyyy-mm-dd}``), the reading's own
  time (epoch ms) as sort key: a chart's range is a key-condition Query on a
  few partitions, and no partition grows without bound or runs hot.
* ``iot-telemetry-rollups-<stage>``: the same partitions, one item per minute
  (min, max, sum, count), written at ingest: a month's chart reads 1,440
  items a day instead of every raw point.
* ``iot-telemetry-latest-<stage>``: the newest value per device and metric,
  with ``MetricIndex`` (metric, device_id) so the device list's columns for
  the whole fleet are one paged Query per metric.

Retention is DynamoDB's TTL (``expires_at``, epoch seconds, set at write), so
no job deletes rows; reads skip items past their TTL that DynamoDB has not
removed yet (it takes up to a few days). Nothing here is a Scan."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from core.errors import SmartIotError
from core.model import Reading
from core.model.timeutil import from_epoch_ms
from core.ports.telemetry import Series, TelemetryStore
from plugins.aws.dynamodb.codec import Item
from plugins.aws.dynamodb.numbers import EXACT_SUFFIX, get_value, number_text, put_value
from plugins.aws.dynamodb.paging import batch_get, batch_put, query_items
from plugins.aws.dynamodb.tables import TELEMETRY_BY_METRIC
from plugins.aws.settings import AwsSettings
from plugins.aws.telemetry import names
from plugins.aws.telemetry.names import DAY_MS, MINUTE_MS

RAW_RETENTION_DAYS = 90
# UpdateItem and Query are one round trip each: a batch of a whole fleet's
# readings (hundreds of series) or an overlay of many devices runs them on a
# few threads (boto3 clients are thread-safe) instead of one after another.
_THREADS = 8
ROLLUP_RETENTION_DAYS = 400

_KEY = "series_day"
_RAW_SORT = "ts_ms"
_ROLLUP_SORT = "minute"


class RetentionIsTtl(SmartIotError):
    """Raw readings on DynamoDB expire through the table's TTL, not a delete job."""


def series_day(device_id: str, metric: str, ts_ms: int) -> str:
    day = datetime.fromtimestamp(ts_ms // DAY_MS * 86_400, UTC).strftime("%Y-%m-%d")
    return f"{device_id}#{metric}#{day}"


def _days(start_ms: int, end_ms: int) -> range:
    """The UTC days (as multiples of DAY_MS) that [start_ms, end_ms) touches."""
    if end_ms <= start_ms:
        return range(0)
    return range(start_ms // DAY_MS * DAY_MS, end_ms, DAY_MS)


def _num(value: float | int) -> dict[str, str]:
    """A number attribute; magnitudes below DynamoDB's smallest as 0
    (plugins/aws/dynamodb/numbers.py: readings keep their exact value beside)."""
    return {"N": number_text(value)}


def _raw_item(pk: str, ts: int, value: float, expires_at: int) -> Item:
    item: Item = {_KEY: {"S": pk}, _RAW_SORT: _num(ts), "expires_at": _num(expires_at)}
    put_value(item, "v", value)
    return item


class Columns:
    """Per-point (or per-minute) columns gathered from pages, for numpy folding."""

    def __init__(self) -> None:
        self.ts: list[int] = []
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.total: list[float] = []
        self.n: list[int] = []

    def add(self, ts: int, lo: float, hi: float, total: float, n: int) -> None:
        self.ts.append(ts)
        self.lo.append(lo)
        self.hi.append(hi)
        self.total.append(total)
        self.n.append(n)


def fold(device_id: str, metric: str, cols: Columns, start_ms: int, bucket_ms: int) -> Series:
    """Raw points and minute rollups into epoch-aligned buckets (the SQL
    store's and Timestream's ``bin()`` alignment): min of mins, max of maxes,
    sum of sums over sum of counts."""
    origin = start_ms // bucket_ms * bucket_ms
    ts = np.asarray(cols.ts, dtype=np.int64)
    index, inverse = np.unique((ts - origin) // bucket_ms, return_inverse=True)
    size = index.shape[0]
    lo = np.full(size, np.inf)
    hi = np.full(size, -np.inf)
    total = np.zeros(size)
    count = np.zeros(size, dtype=np.int64)
    np.minimum.at(lo, inverse, np.asarray(cols.lo, dtype=np.float64))
    np.maximum.at(hi, inverse, np.asarray(cols.hi, dtype=np.float64))
    np.add.at(total, inverse, np.asarray(cols.total, dtype=np.float64))
    np.add.at(count, inverse, np.asarray(cols.n, dtype=np.int64))
    return Series(device_id, metric, ts_ms=(origin + index * bucket_ms).astype(np.int64),
                  value=total / np.maximum(count, 1), minimum=lo, maximum=hi, count=count,
                  bucket_ms=bucket_ms)


class DynamoTelemetryStore(TelemetryStore):
    def __init__(self, client: Any, settings: AwsSettings, *,
                 raw_retention_days: int = RAW_RETENTION_DAYS,
                 rollup_retention_days: int = ROLLUP_RETENTION_DAYS,
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._page = settings.page_size
        self.raw_table = settings.table("telemetry")
        self.rollup_table = settings.table("telemetry-rollups")
        self.latest_table = settings.table("telemetry-latest")
        self._raw_ttl_s = raw_retention_days * 86_400
        self._rollup_ttl_s = rollup_retention_days * 86_400
        self._clock = clock

    # ------------------------------------------------------------------ write

    def write_batch(self, readings: Sequence[Reading]) -> int:
        """Readings already stored (a redelivered MQTT message, a replayed
        Kinesis batch) are found with one BatchGetItem per 100 keys and left
        out, so the first write wins and no minute's rollup counts a reading
        twice. New ones go in with BatchWriteItem (unprocessed items retried),
        then one UpdateItem per touched minute and per (device, metric)."""
        rows: dict[tuple[str, int], tuple[str, str, int, float]] = {}
        for r in readings:
            device_id, metric = names.device(r.device_id), names.metric(r.metric)
            ts_ms = round(r.ts.timestamp() * 1000)
            rows.setdefault((series_day(device_id, metric, ts_ms), ts_ms),
                            (device_id, metric, ts_ms, float(r.value)))
        if not rows:
            return 0
        keys: list[Item] = [{_KEY: {"S": pk}, _RAW_SORT: _num(ts)} for pk, ts in rows]
        stored = {(str(item[_KEY]["S"]), int(item[_RAW_SORT]["N"]))
                  for item in batch_get(self._client, self.raw_table, keys,
                                        projection=f"{_KEY}, {_RAW_SORT}")}
        new = [(key, row) for key, row in rows.items() if key not in stored]
        batch_put(self._client, self.raw_table, [
            _raw_item(pk, ts, row[3], ts // 1000 + self._raw_ttl_s) for (pk, ts), row in new])
        self._roll_up([row for _, row in new])
        self._update_latest([row for _, row in new])
        return len(new)

    def _roll_up(self, rows: list[tuple[str, str, int, float]]) -> None:
        minutes: dict[tuple[str, int], list[float]] = {}
        for device_id, metric, ts, value in rows:
            minute = ts // MINUTE_MS * MINUTE_MS
            minutes.setdefault((series_day(device_id, metric, minute), minute), []).append(value)
        self._each(self._roll_up_minute, list(minutes.items()))

    def _roll_up_minute(self, minute_values: tuple[tuple[str, int], list[float]]) -> None:
        (pk, minute), values = minute_values
        lo, hi = min(values), max(values)
        key = {_KEY: {"S": pk}, _ROLLUP_SORT: _num(minute)}
        item = self._client.update_item(
            TableName=self.rollup_table, Key=key, ReturnValues="ALL_NEW",
            UpdateExpression="ADD #sum :sum, #n :n SET #lo = if_not_exists(#lo, :lo), "
                             "#hi = if_not_exists(#hi, :hi), expires_at = :exp",
            ExpressionAttributeNames={"#sum": "total", "#n": "n", "#lo": "lo", "#hi": "hi"},
            ExpressionAttributeValues={
                ":sum": _num(sum(values)), ":n": _num(len(values)), ":lo": _num(lo),
                ":hi": _num(hi), ":exp": _num(minute // 1000 + self._rollup_ttl_s)},
        )["Attributes"]
        # DynamoDB has no MIN/MAX update: narrow them with conditional writes
        # that only ever move outward, so concurrent writers cannot undo each other.
        if float(item["lo"]["N"]) > lo:
            self._set_if(key, "lo", lo, "#a > :v")
        if float(item["hi"]["N"]) < hi:
            self._set_if(key, "hi", hi, "#a < :v")

    def _set_if(self, key: Item, attribute: str, value: float, condition: str) -> None:
        # failing the condition means another writer moved it further already
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.update_item(
                TableName=self.rollup_table, Key=key, UpdateExpression="SET #a = :v",
                ConditionExpression=condition, ExpressionAttributeNames={"#a": attribute},
                ExpressionAttributeValues={":v": _num(value)})

    def _update_latest(self, rows: list[tuple[str, str, int, float]]) -> None:
        newest: dict[tuple[str, str], tuple[int, float]] = {}
        for device_id, metric, ts, value in rows:
            have = newest.get((device_id, metric))
            if have is None or ts > have[0]:
                newest[(device_id, metric)] = (ts, value)
        self._each(self._set_latest, list(newest.items()))

    def _set_latest(self, entry: tuple[tuple[str, str], tuple[int, float]]) -> None:
        (device_id, metric), (ts, value) = entry
        values: Item = {":ts": _num(ts)}
        put_value(values, ":v", value)  # and ":v_exact" when rounded
        update = ("SET #ts = :ts, #v = :v, #x = :v_exact" if ":v" + EXACT_SUFFIX in values
                  else "SET #ts = :ts, #v = :v REMOVE #x")
        # failing the condition means a newer reading is there already (a late one arrived)
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.update_item(
                TableName=self.latest_table,
                Key={"device_id": {"S": device_id}, "metric": {"S": metric}},
                UpdateExpression=update,
                ConditionExpression="attribute_not_exists(#ts) OR #ts < :ts",
                ExpressionAttributeNames={"#ts": "ts_ms", "#v": "v", "#x": "v" + EXACT_SUFFIX},
                ExpressionAttributeValues=values)

    @staticmethod
    def _each(work: Callable[[Any], None], items: list[Any]) -> None:
        if len(items) <= 1:
            for item in items:
                work(item)
            return
        with ThreadPoolExecutor(max_workers=min(_THREADS, len(items)),
                                thread_name_prefix="telemetry-write") as pool:
            list(pool.map(work, items))  # re-raises the first failure

    # ------------------------------------------------------------------- read

    def _range(self, table: str, sort: str, device_id: str, metric: str,
               start_ms: int, end_ms: int) -> Iterator[Item]:
        """Items of [start_ms, end_ms) over the day partitions it touches, each
        a paged key-condition Query, skipping what has passed its TTL."""
        now_s = self._clock()
        for day in _days(start_ms, end_ms):
            yield from (
                item for item in query_items(
                    self._client, self._page, TableName=table,
                    KeyConditionExpression="#pk = :pk AND #sk BETWEEN :a AND :b",
                    ExpressionAttributeNames={"#pk": _KEY, "#sk": sort},
                    ExpressionAttributeValues={
                        ":pk": {"S": series_day(device_id, metric, day)},
                        ":a": _num(max(start_ms, day)),
                        ":b": _num(min(end_ms, day + DAY_MS) - 1)})
                if "expires_at" not in item or float(item["expires_at"]["N"]) > now_s)

    def query(self, device_id: str, metric: str, start: datetime, end: datetime, *,
              bucket_ms: int | None = None) -> Series:
        device_id, metric = names.device(device_id), names.metric(metric)
        bucket_ms = names.bucket(bucket_ms)
        start_ms, end_ms = names.span(start, end)
        if bucket_ms is None:
            ts: list[int] = []
            values: list[float] = []
            for item in self._range(self.raw_table, _RAW_SORT, device_id, metric,
                                    start_ms, end_ms):
                ts.append(int(item[_RAW_SORT]["N"]))
                values.append(get_value(item, "v"))
            return Series(device_id, metric, np.asarray(ts, dtype=np.int64),
                          np.asarray(values, dtype=np.float64))
        cols = Columns()
        # Whole minutes come from the rollups (a bucket of whole minutes is made
        # of them exactly); the ragged edges of the range from raw points.
        first = -(-start_ms // MINUTE_MS) * MINUTE_MS
        last = end_ms // MINUTE_MS * MINUTE_MS
        if bucket_ms % MINUTE_MS == 0 and first < last:
            raw_spans = [(start_ms, first), (last, end_ms)]
            for item in self._range(self.rollup_table, _ROLLUP_SORT, device_id, metric,
                                    first, last):
                cols.add(int(item[_ROLLUP_SORT]["N"]), float(item["lo"]["N"]),
                         float(item["hi"]["N"]), float(item["total"]["N"]),
                         int(item["n"]["N"]))
        else:
            raw_spans = [(start_ms, end_ms)]
        for a, b in raw_spans:
            for item in self._range(self.raw_table, _RAW_SORT, device_id, metric, a, b):
                value = get_value(item, "v")
                cols.add(int(item[_RAW_SORT]["N"]), value, value, value, 1)
        return fold(device_id, metric, cols, start_ms, bucket_ms)

    def query_many(self, device_ids: Sequence[str], metric: str, start: datetime,
                   end: datetime, *, bucket_ms: int | None = None) -> list[Series]:
        ids = list(dict.fromkeys(device_ids))
        with ThreadPoolExecutor(max_workers=max(1, min(_THREADS, len(ids))),
                                thread_name_prefix="telemetry-read") as pool:
            found = dict(zip(ids, pool.map(
                lambda d: self.query(d, metric, start, end, bucket_ms=bucket_ms), ids),
                strict=True))
        return [found[d] for d in device_ids]

    def metrics_for(self, device_id: str) -> list[str]:
        return sorted(str(item["metric"]["S"]) for item in self._latest_items(device_id))

    def latest(self, device_id: str) -> dict[str, Reading]:
        return {str(item["metric"]["S"]): Reading(device_id, str(item["metric"]["S"]),
                                                  from_epoch_ms(int(item["ts_ms"]["N"])),
                                                  get_value(item, "v"))
                for item in self._latest_items(device_id)}

    def _latest_items(self, device_id: str) -> Iterator[Item]:
        return query_items(
            self._client, self._page, TableName=self.latest_table,
            KeyConditionExpression="device_id = :d",
            ExpressionAttributeValues={":d": {"S": names.device(device_id)}})

    def latest_values(self, metrics: Sequence[str]) -> dict[str, dict[str, float]]:
        """One paged Query of ``MetricIndex`` per metric asked for."""
        out: dict[str, dict[str, float]] = {}
        for metric in sorted({names.metric(m) for m in metrics}):
            for item in query_items(
                    self._client, self._page, TableName=self.latest_table,
                    IndexName=TELEMETRY_BY_METRIC, KeyConditionExpression="metric = :m",
                    ExpressionAttributeValues={":m": {"S": metric}}):
                out.setdefault(str(item["device_id"]["S"]), {})[metric] = get_value(item, "v")
        return out

    def latest_values_of(self, metrics: Sequence[str],
                         device_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """BatchGetItem of (device, metric) keys: a page of the device list
        reads its own items, not each metric's whole index partition."""
        wanted = sorted({names.metric(m) for m in metrics})
        by_key = {names.device(d): d for d in dict.fromkeys(device_ids)}
        keys = [{"device_id": {"S": key}, "metric": {"S": m}} for key in by_key for m in wanted]
        out: dict[str, dict[str, float]] = {}
        for item in batch_get(self._client, self.latest_table, keys):
            device_id = by_key.get(str(item["device_id"]["S"]), str(item["device_id"]["S"]))
            out.setdefault(device_id, {})[str(item["metric"]["S"])] = get_value(item, "v")
        return out

    def reporting_devices(self, start: datetime, end: datetime, *, bucket_ms: int,
                          metric: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        raise NotImplementedError(
            "counting reporting devices needs a fleet-wide scan on DynamoDB; not available")

    # -------------------------------------------------------------- retention

    def delete_before(self, cutoff: datetime) -> int:
        raise RetentionIsTtl(
            f"raw readings on DynamoDB expire by the table's TTL ({self._raw_ttl_s // 86_400} "
            "days after their time), not by a delete job; see docs/aws.md, Telemetry")

    def downsample_before(self, cutoff: datetime, bucket_ms: int) -> int:
        """Nothing to fold: minute rollups are written at ingest and outlive the
        raw points by their own TTL."""
        names.bucket(bucket_ms)
        return 0
