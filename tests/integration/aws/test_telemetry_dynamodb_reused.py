"""The telemetry store's contract as the SQL store's own tests hold it
(duplicates ignored with the first write winning, half-open ranges isolated
by device and metric, buckets equal to numpy on the raw data, the latest value
not replaced by a late older one), collected again over the DynamoDB
time-series adapter behind moto's server. Those tests write readings of
2024; the adapter's clock is set there so they are within retention."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.aws.conftest import AwsSandbox
from tests.integration.store.test_telemetry import (
    T0,
    sample,
    test_bucket_aggregation_matches_numpy,
    test_latest_and_metrics,
    test_range_is_half_open_and_isolated_by_device_and_metric,
    test_write_batch_ignores_duplicates,
)

__all__ = [
    "sample",
    "test_bucket_aggregation_matches_numpy",
    "test_latest_and_metrics",
    "test_range_is_half_open_and_isolated_by_device_and_metric",
    "test_write_batch_ignores_duplicates",
]


class TelemetryOnly:
    def __init__(self, telemetry: Any) -> None:
        self.telemetry = telemetry


@pytest.fixture
def store(aws: AwsSandbox) -> TelemetryOnly:
    from plugins.aws.clients import AwsClients
    from plugins.aws.dynamodb.tables import TABLES, create_tables
    from plugins.aws.settings import AwsSettings
    from plugins.aws.telemetry.dynamo import DynamoTelemetryStore

    settings = AwsSettings(region=aws.region, stage=aws.stage, endpoint_url=aws.endpoint_url,
                           page_size=100)
    client = AwsClients(settings).dynamodb
    create_tables(client, settings, tuple(t for t in TABLES if t.role.startswith("telemetry")))
    return TelemetryOnly(DynamoTelemetryStore(client, settings, clock=lambda: T0.timestamp()))
