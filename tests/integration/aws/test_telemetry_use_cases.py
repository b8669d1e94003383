"""The console's telemetry use cases on an aws profile with no telemetry key
(so DynamoDB's time series, the default): the devices table's battery and
RSSI columns, the metrics a device reported and the History chart's buckets,
all through context.api as the pages call it, over moto's server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.context import AppContext
from core.model import Device, Reading
from core.model.analytics import HistoryRequest
from core.model.timeutil import to_epoch_ms

T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)


@pytest.fixture
def context(aws_context: AppContext) -> AppContext:
    """The console on an aws profile, its tables created."""
    from plugins.aws.dynamodb.tables import create_tables

    backend: Any = aws_context.backend
    create_tables(backend.clients.dynamodb, backend.settings)
    return aws_context


def test_devices_table_and_history_chart_read_dynamodb_telemetry(context: AppContext) -> None:
    for n in (1, 2):
        context.api.devices.register(Device(f"pump-{n}", device_type="pump"))
    # what the stream consumer writes: 30 minutes of readings every 20 s
    context.backend.telemetry.write_batch(
        [Reading(f"pump-{n}", metric, T0 + timedelta(seconds=20 * i), value + i + n)
         for n in (1, 2) for i in range(90)
         for metric, value in (("battery_pct", 50.0), ("rssi", -90.0), ("temp", 10.0))])

    overview = context.api.devices.overview()
    assert overview.latest_values == {
        f"pump-{n}": {"battery_pct": 50.0 + 89 + n, "rssi": -90.0 + 89 + n} for n in (1, 2)}
    assert context.api.analytics.metrics(["pump-1"]) == ["battery_pct", "rssi", "temp"]

    request = HistoryRequest(("pump-1",), ("temp",), T0, T0 + timedelta(minutes=30),
                             bucket_ms=600_000)
    (series,) = context.api.analytics.history(request, overlays=False).series
    assert series.ts_ms.tolist() == [to_epoch_ms(T0) // 600_000 * 600_000 + k * 600_000
                                     for k in range(len(series))]
    assert series.count is not None and int(series.count.sum()) == 90
    assert series.maximum is not None and float(series.maximum.max()) == 10.0 + 89 + 1
