"""The profile's ``telemetry`` key picks the history adapter of an aws backend."""

from __future__ import annotations

from core.errors import ConfigError
from core.ports.telemetry import TelemetryStore
from plugins.aws.clients import AwsClients
from plugins.aws.settings import AwsSettings

ADAPTERS = ("dynamodb", "timestream")
DEFAULT = "dynamodb"  # Timestream for LiveAnalytics takes no new customers since 2025


def telemetry_store(kind: str, settings: AwsSettings, clients: AwsClients) -> TelemetryStore:
    kind = kind or DEFAULT
    if kind == "dynamodb":
        from plugins.aws.telemetry.dynamo import DynamoTelemetryStore

        return DynamoTelemetryStore(clients.dynamodb, settings)
    if kind == "timestream":
        from plugins.aws.telemetry.timestream import TimestreamTelemetryStore

        return TimestreamTelemetryStore(clients.client("timestream-write"),
                                        clients.client("timestream-query"), settings)
    raise ConfigError(f"the profile's 'telemetry' must be one of {', '.join(ADAPTERS)} "
                      f"(docs/aws.md, Telemetry), got {kind!r}")
