"""Telemetry history in Timestream, behind moto's server. moto stores what
WriteRecords sends but has no query engine: it answers a Query with results
preset through its API (moto-api/static/timestream/query-results), so the
query side is checked as statements (quoted, refused for hostile names) and
as the parsing of Timestream's real answer shape, page after page
(NextToken) — docs/aws.md, Gaps."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.errors import ConfigError, ValidationError
from core.model import Reading
from core.model.timeutil import to_epoch_ms
from tests.integration.aws.conftest import AwsSandbox, record_calls

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
T0_MS = to_epoch_ms(T0)


class Timestream:
    def __init__(self, aws: AwsSandbox) -> None:
        from plugins.aws.backend import build_aws_backend_for
        from plugins.aws.settings import AwsSettings

        self.aws = aws
        self.settings = AwsSettings(region=aws.region, stage=aws.stage,
                                    endpoint_url=aws.endpoint_url, page_size=2)
        self.backend = build_aws_backend_for(self.settings, telemetry="timestream")
        self.store: Any = self.backend.telemetry
        clients = self.backend.clients
        self.writes = record_calls(clients.client("timestream-write"), "timestream-write")
        self.queries = record_calls(clients.client("timestream-query"), "timestream-query")

    def preset(self, statement: str, pages: list[dict[str, Any]]) -> None:
        """What moto answers to ``statement``, one page per call, in order."""
        body = json.dumps({"region": self.aws.region, "results": {statement: pages}}).encode()
        request = urllib.request.Request(
            f"{self.aws.endpoint_url}/moto-api/static/timestream/query-results", data=body,
            method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 201


@pytest.fixture
def ts(aws: AwsSandbox) -> Timestream:
    return Timestream(aws)


def _page(columns: list[tuple[str, str]], rows: list[list[str | None]],
          token: str | None = None) -> dict[str, Any]:
    """A Query answer as Timestream sends it."""
    page: dict[str, Any] = {
        "QueryId": "AEBQEANMHG7H2AOBB2OHX3QI4QA5ZV3ZAFV7BOAXD3HZPIRDU5XJTZ5BTFVFVUY",
        "ColumnInfo": [{"Name": n, "Type": {"ScalarType": t}} for n, t in columns],
        "Rows": [{"Data": [{"NullValue": True} if v is None else {"ScalarValue": v}
                           for v in row]} for row in rows],
        "QueryStatus": {"ProgressPercentage": 100.0, "CumulativeBytesScanned": 1024,
                        "CumulativeBytesMetered": 10_000_000},
    }
    if token:
        page["NextToken"] = token
    return page


def test_records_carry_the_readings_time_one_measure_per_metric(ts: Timestream) -> None:
    write = ts.backend.clients.client("timestream-write")
    write.create_database(DatabaseName=ts.store.database)
    write.create_table(DatabaseName=ts.store.database, TableName=ts.store.table)
    readings = [Reading("dev-1", "temp", T0 + timedelta(seconds=s), 20.0 + s) for s in range(120)]
    readings += [Reading("dev-1", "hum", T0, 40.0), Reading("dev-1", "temp", T0, 99.0)]  # a dup
    assert ts.store.write_batch(readings) == 121
    calls = ts.writes.named("WriteRecords")
    assert [len(c["Records"]) for c in calls] == [100, 21]  # WriteRecords takes 100 at most
    records = [r for c in calls for r in c["Records"]]
    first = records[0]
    assert first["Dimensions"] == [{"Name": "device_id", "Value": "dev-1",
                                    "DimensionValueType": "VARCHAR"}]
    assert (first["MeasureName"], first["MeasureValue"], first["MeasureValueType"]) == (
        "temp", "20.0", "DOUBLE")
    # the reading's own time, not the time of writing
    assert (first["Time"], first["TimeUnit"]) == (str(T0_MS), "MILLISECONDS")
    assert {r["Time"] for r in records if r["MeasureName"] == "temp"} == {
        str(T0_MS + s * 1000) for s in range(120)}


def test_a_history_query_follows_next_token_and_parses_every_page(ts: Timestream) -> None:
    start, end = T0, T0 + timedelta(minutes=5)
    statement = ts.store.statements.raw("dev-1", "temp", T0_MS, to_epoch_ms(end))
    columns = [("ts_ms", "BIGINT"), ("value", "DOUBLE")]
    ts.preset(statement, [
        _page(columns, [[str(T0_MS), "20.5"], [str(T0_MS + 1000), "21"]], token="page-2"),
        _page([], [], token="page-3"),  # Timestream sends empty pages while a query runs
        _page(columns, [[str(T0_MS + 2000), "-3.25"]]),
    ])
    series = ts.store.query("dev-1", "temp", start, end)
    assert series.ts_ms.tolist() == [T0_MS, T0_MS + 1000, T0_MS + 2000]
    assert series.value.tolist() == [20.5, 21.0, -3.25]
    sent = ts.queries.named("Query")
    assert [q.get("NextToken") for q in sent] == [None, "page-2", "page-3"]
    assert all(q["QueryString"] == statement and q["MaxRows"] == 2 for q in sent)


def test_buckets_latest_and_fleet_values_are_parsed_from_timestream_answers(
        ts: Timestream) -> None:
    end = T0 + timedelta(hours=1)
    ts.preset(ts.store.statements.buckets("dev-1", "temp", T0_MS, to_epoch_ms(end), 600_000), [
        _page([("bucket_ms", "BIGINT"), ("lo", "DOUBLE"), ("hi", "DOUBLE"), ("total", "DOUBLE"),
               ("n", "BIGINT")],
              [[str(T0_MS), "1.0", "3.0", "6.0", "3"],
               [str(T0_MS + 600_000), "5.0", "5.0", "5.0", "1"]])])
    s = ts.store.query("dev-1", "temp", T0, end, bucket_ms=600_000)
    assert s.ts_ms.tolist() == [T0_MS, T0_MS + 600_000] and s.bucket_ms == 600_000
    assert s.value.tolist() == [2.0, 5.0]
    assert s.minimum is not None and s.minimum.tolist() == [1.0, 5.0]
    assert s.count is not None and s.count.tolist() == [3, 1]

    ts.preset(ts.store.statements.latest("dev-1"), [
        _page([("measure_name", "VARCHAR"), ("ts_ms", "BIGINT"), ("value", "DOUBLE")],
              [["hum", str(T0_MS), "40.5"], ["temp", str(T0_MS + 5000), "21.0"]])])
    latest = ts.store.latest("dev-1")
    assert latest["temp"] == Reading("dev-1", "temp", T0 + timedelta(seconds=5), 21.0)
    assert sorted(latest) == ["hum", "temp"]

    ts.preset(ts.store.statements.latest_values(["rssi", "battery_pct"]), [
        _page([("device_id", "VARCHAR"), ("measure_name", "VARCHAR"), ("value", "DOUBLE")],
              [["dev-1", "battery_pct", "80"], ["dev-1", "rssi", "-61"]], token="t"),
        _page([("device_id", "VARCHAR"), ("measure_name", "VARCHAR"), ("value", "DOUBLE")],
              [["dev-2", "battery_pct", "12.5"]])])
    assert ts.store.latest_values(["battery_pct", "rssi"]) == {
        "dev-1": {"battery_pct": 80.0, "rssi": -61.0}, "dev-2": {"battery_pct": 12.5}}


def test_the_parser_reads_timestamps_nulls_and_refuses_what_it_did_not_ask_for() -> None:
    from plugins.aws.telemetry.timestream import TimestreamAnswerError, parse_rows

    page = _page([("time", "TIMESTAMP"), ("v", "DOUBLE"), ("ok", "BOOLEAN"), ("d", "VARCHAR")],
                 [["2026-11-30 12:00:01.123456789", None, "true", "dev-1"]])
    assert parse_rows(page) == [{"time": datetime(2026, 11, 30, 12, 0, 1, 123456, tzinfo=UTC),
                                 "v": None, "ok": True, "d": "dev-1"}]
    series_column = {"QueryId": "q", "Rows": [], "ColumnInfo": [
        {"Name": "s", "Type": {"TimeSeriesMeasureValueColumnInfo": {"Type": {
            "ScalarType": "DOUBLE"}}}}]}
    with pytest.raises(TimestreamAnswerError, match="'s' is not a scalar"):
        parse_rows(series_column)
    short = _page([("a", "BIGINT"), ("b", "BIGINT")], [["1"]])
    with pytest.raises(TimestreamAnswerError, match="1 values for 2 columns"):
        parse_rows(short)


def test_statements_quote_every_name_and_hostile_ones_never_reach_timestream(
        ts: Timestream) -> None:
    from plugins.aws.telemetry.timestream import literal

    statement = ts.store.statements.raw("dev-1", "temp", T0_MS, T0_MS + 1000)
    assert statement.startswith('SELECT to_milliseconds(time) AS ts_ms')
    assert f'FROM "iot-telemetry-{ts.aws.stage}"."readings" WHERE ' in statement
    assert "device_id = 'dev-1' AND measure_name = 'temp'" in statement
    assert literal("it's") == "'it''s'"
    for device_id, metric in [("x' OR '1'='1", "temp"), ("dev-1", "temp' --"),
                              ("dev-1", "temp) UNION SELECT"), ('dev"1', "temp"), ("", "temp")]:
        with pytest.raises(ValidationError):
            ts.store.query(device_id, metric, T0, T0 + timedelta(hours=1))
        with pytest.raises(ValidationError):
            ts.store.query(device_id, metric, T0, T0 + timedelta(hours=1), bucket_ms=60_000)
        with pytest.raises(ValidationError):
            if device_id == "dev-1":
                ts.store.latest_values([metric])
            else:
                ts.store.latest(device_id)
    assert ts.queries.calls == []


def test_the_profile_key_picks_the_adapter_and_refuses_others(aws: AwsSandbox) -> None:
    from plugins.aws.backend import build_aws_backend_for
    from plugins.aws.settings import AwsSettings
    from plugins.aws.telemetry.dynamo import DynamoTelemetryStore

    settings = AwsSettings(region=aws.region, stage=aws.stage, endpoint_url=aws.endpoint_url)
    assert isinstance(build_aws_backend_for(settings).telemetry, DynamoTelemetryStore)
    with pytest.raises(ConfigError, match="'telemetry' must be one of dynamodb, timestream"):
        build_aws_backend_for(settings, telemetry="influx")
