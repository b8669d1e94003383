"""Telemetry history in DynamoDB's time-series layout, behind moto's server:
the round trip, paging over several pages, long ranges answered from the
minute rollups, duplicates ignored, hostile names refused before any request.
The SQL store's own telemetry tests are collected again over this adapter
(tests/integration/aws/test_telemetry_dynamodb_reused.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from core.errors import ValidationError
from core.model import Reading
from core.model.timeutil import from_epoch_ms, to_epoch_ms
from tests.integration.aws.conftest import PAGE, DynamoFleet

# Ten minutes before a recent midnight (two day partitions), within the 90 days of retention.
T0 = datetime.now(UTC).replace(hour=23, minute=50, second=0, microsecond=0) - timedelta(days=2)
T0_MS = to_epoch_ms(T0)


def _series(device: str, metric: str, ts_ms: np.ndarray, values: np.ndarray) -> list[Reading]:
    return [Reading(device, metric, from_epoch_ms(int(t)), float(v))
            for t, v in zip(ts_ms, values, strict=True)]


def _keys(calls: list[dict[str, object]]) -> list[object]:
    return [c["ExpressionAttributeValues"][":pk"]["S"]  # type: ignore[index]
            for c in calls if ":pk" in c.get("ExpressionAttributeValues", {})]  # type: ignore[operator]


def test_readings_round_trip_across_day_partitions_page_by_page(dynamo: DynamoFleet) -> None:
    telemetry = dynamo.backend.telemetry
    ts = T0_MS + np.arange(40, dtype=np.int64) * 30_000  # 20 minutes, across midnight
    values = np.sin(np.arange(40) / 5.0) * 10
    assert telemetry.write_batch(_series("dev-1", "temp", ts, values)) == 40
    telemetry.write_batch(_series("dev-2", "temp", ts, values + 100))  # another device

    dynamo.calls.clear()
    series = telemetry.query("dev-1", "temp", from_epoch_ms(int(ts[3])),
                             from_epoch_ms(int(ts[37])))
    assert series.ts_ms.tolist() == ts[3:37].tolist()
    assert series.value.tolist() == values[3:37].tolist()
    queries = dynamo.calls.named("Query")
    assert "Scan" not in dynamo.calls.operations
    # one partition per UTC day, every page followed (PAGE items each)
    assert set(_keys(queries)) == {f"dev-1#temp#{T0:%Y-%m-%d}",
                                   f"dev-1#temp#{T0 + timedelta(days=1):%Y-%m-%d}"}
    assert len(queries) >= 34 // PAGE
    assert all(q["Limit"] == PAGE for q in queries)
    # an overlay of several devices: one Series per id asked for, in that order
    many = telemetry.query_many(["dev-2", "dev-1", "dev-2"], "temp", T0,
                                T0 + timedelta(hours=1), bucket_ms=600_000)
    assert [s.device_id for s in many] == ["dev-2", "dev-1", "dev-2"]
    assert [float(s.maximum.max()) for s in many] == [  # type: ignore[union-attr]
        values.max() + 100, values.max(), values.max() + 100]


def test_a_redelivered_reading_is_ignored_and_counts_once_in_the_rollup(
        dynamo: DynamoFleet) -> None:
    telemetry = dynamo.backend.telemetry
    first = [Reading("dev-1", "temp", T0 + timedelta(seconds=s), float(s)) for s in range(5)]
    assert telemetry.write_batch(first) == 5
    again = [Reading("dev-1", "temp", T0 + timedelta(seconds=s), 99.0) for s in range(3, 8)]
    assert telemetry.write_batch(again) == 3
    raw = telemetry.query("dev-1", "temp", T0, T0 + timedelta(minutes=1))
    assert raw.value.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 99.0, 99.0, 99.0]  # first write wins
    minute = telemetry.query("dev-1", "temp", T0, T0 + timedelta(minutes=1), bucket_ms=60_000)
    assert minute.count is not None and minute.count.tolist() == [8]
    assert minute.minimum is not None and minute.minimum.tolist() == [0.0]
    assert minute.maximum is not None and minute.maximum.tolist() == [99.0]
    assert minute.value.tolist() == pytest.approx([(10 + 3 * 99) / 8])


def test_a_long_range_is_read_from_the_minute_rollups_not_raw_points(
        dynamo: DynamoFleet) -> None:
    telemetry = dynamo.backend.telemetry
    rng = np.random.default_rng(3)
    ts = T0_MS + np.sort(rng.choice(1_800_000, size=300, replace=False)).astype(np.int64)
    values = rng.normal(20, 4, size=ts.size)
    telemetry.write_batch(_series("dev-1", "temp", ts, values))
    start_ms, end_ms = T0_MS + 17_000, T0_MS + 1_500_000  # ragged edges on purpose
    bucket = 300_000

    dynamo.calls.clear()
    s = telemetry.query("dev-1", "temp", from_epoch_ms(start_ms), from_epoch_ms(end_ms),
                        bucket_ms=bucket)
    tables = [q["TableName"] for q in dynamo.calls.named("Query")]
    raw_items = [q for q in dynamo.calls.named("Query") if q["TableName"] == telemetry.raw_table]
    assert telemetry.rollup_table in tables
    # raw points are read only for the two ragged minutes at the edges
    for q in raw_items:
        lo, hi = (int(q["ExpressionAttributeValues"][k]["N"]) for k in (":a", ":b"))
        assert hi - lo < 60_000

    inside = (ts >= start_ms) & (ts < end_ms)
    t_in, v_in = ts[inside], values[inside]
    starts = t_in // bucket * bucket
    expected = np.unique(starts)
    assert s.ts_ms.tolist() == expected.tolist()
    assert s.count is not None and s.minimum is not None and s.maximum is not None
    for i, b in enumerate(expected):
        chunk = v_in[starts == b]
        assert s.count[i] == chunk.size
        assert s.minimum[i] == pytest.approx(chunk.min())
        assert s.maximum[i] == pytest.approx(chunk.max())
        assert s.value[i] == pytest.approx(chunk.mean())


def test_latest_values_for_the_fleet_query_the_metric_index(dynamo: DynamoFleet) -> None:
    telemetry = dynamo.backend.telemetry
    for n in range(5):
        telemetry.write_batch([Reading(f"dev-{n}", "battery_pct", T0, 50.0 + n),
                               Reading(f"dev-{n}", "rssi", T0, -60.0 - n)])
    telemetry.write_batch([Reading("dev-0", "battery_pct", T0 - timedelta(hours=1), 1.0)])
    dynamo.calls.clear()
    values = telemetry.latest_values(["battery_pct"])
    assert values == {f"dev-{n}": {"battery_pct": 50.0 + n} for n in range(5)}
    queries = dynamo.calls.named("Query")
    assert len(queries) >= 3 and all(q["IndexName"] == "MetricIndex" for q in queries)
    assert "Scan" not in dynamo.calls.operations
    assert telemetry.metrics_for("dev-0") == ["battery_pct", "rssi"]


@pytest.mark.parametrize("device_id, metric", [
    ("dev-1#temp#2024-09-01", "temp"),   # would reach into another partition
    ("dev' OR '1'='1", "temp"),
    ("dev-1", "temp#2024"),
    ("dev-1", "1temp"),
    ("dev-1", "te mp"),
])
def test_hostile_ids_and_metrics_are_refused_before_any_request(
        dynamo: DynamoFleet, device_id: str, metric: str) -> None:
    telemetry = dynamo.backend.telemetry
    dynamo.calls.clear()
    with pytest.raises(ValidationError):
        telemetry.query(device_id, metric, T0, T0 + timedelta(hours=1))
    with pytest.raises(ValidationError):
        telemetry.query(device_id, metric, T0, T0 + timedelta(hours=1), bucket_ms=60_000)
    with pytest.raises(ValidationError):
        telemetry.latest_values([metric]) if device_id == "dev-1" else telemetry.latest(device_id)
    assert dynamo.calls.calls == []


def test_retention_is_the_tables_ttl(dynamo: DynamoFleet) -> None:
    client = dynamo.backend.clients.dynamodb
    telemetry = dynamo.backend.telemetry
    for table in (telemetry.raw_table, telemetry.rollup_table):
        ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == "expires_at"
    old = datetime.now(UTC) - timedelta(days=200)  # past the 90 days of raw retention
    telemetry.write_batch([Reading("dev-1", "temp", old, 1.0)])
    item = client.query(TableName=telemetry.raw_table, KeyConditionExpression="series_day = :p",
                        ExpressionAttributeValues={":p": {"S": f"dev-1#temp#{old:%Y-%m-%d}"}}
                        )["Items"][0]
    assert int(item["expires_at"]["N"]) == int(old.timestamp()) + 90 * 86_400
    # DynamoDB removes expired items within days; until then reads skip them
    assert len(telemetry.query("dev-1", "temp", old - timedelta(hours=1),
                               old + timedelta(hours=1))) == 0


def test_readings_dynamodb_hands_back_unprocessed_are_written_again(dynamo: DynamoFleet) -> None:
    """DynamoDB answers a throttled BatchWriteItem with UnprocessedItems; the
    first answer here hands back every item (sent no further), the retry
    stores them."""
    from botocore.awsrequest import AWSResponse

    telemetry = dynamo.backend.telemetry
    client = dynamo.backend.clients.dynamodb
    throttled: list[int] = []

    def throttle(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if throttled:
            return None
        throttled.append(1)
        sent = json.loads(params["body"])["RequestItems"]  # the request as serialized
        return AWSResponse("", 200, {}, None), {"UnprocessedItems": sent}

    client.meta.events.register("before-call.dynamodb.BatchWriteItem", throttle)
    try:
        readings = [Reading("dev-1", "temp", T0 + timedelta(seconds=s), float(s))
                    for s in range(30)]
        assert telemetry.write_batch(readings) == 30
    finally:
        client.meta.events.unregister("before-call.dynamodb.BatchWriteItem", throttle)
    writes = dynamo.calls.named("BatchWriteItem")
    assert [len(w["RequestItems"][telemetry.raw_table]) for w in writes] == [25, 25, 5]
    assert throttled == [1]
    assert telemetry.query("dev-1", "temp", T0, T0 + timedelta(minutes=1)).value.tolist() == [
        float(s) for s in range(30)]
