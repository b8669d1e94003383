"""Every DynamoDB table of the backend, with its keys and indexes, and the
function that creates them for a stage (the sandbox, tests; on AWS the
Serverless stack declares the same tables).

The access patterns decide the keys (docs/aws.md, "Data model"): nothing the
console asks for is answered by a Scan."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from plugins.aws.settings import AwsSettings

DEVICES_BY_ORGANIZATION = "OrganizationIndex"
ALERTS_BY_DEVICE = "DeviceIndex"
ALERTS_BY_ORGANIZATION_STATE = "OrganizationStateIndex"
ALERTS_BY_STATE = "StateIndex"
TELEMETRY_BY_METRIC = "MetricIndex"  # telemetry-latest: the fleet's newest value of a metric
DEPLOYMENTS_BY_CREATED = "CreatedIndex"  # deployments: every deployment, newest first

# The organizations table has one partition listing every organization that
# has devices, so "the whole fleet" is a Query per organization, not a Scan.
ORGANIZATIONS_PARTITION = "organization"
# Every deployment record carries kind = "deployment", so listing them is one
# Query of CreatedIndex (a fleet makes a few a week), not a Scan.
DEPLOYMENTS_PARTITION = "deployment"


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    hash_key: str
    range_key: str | None = None


@dataclass(frozen=True, slots=True)
class TableSpec:
    role: str  # AwsSettings.table(role) names it: iot-<role>-<stage>
    hash_key: str
    range_key: str | None = None
    # attribute name -> "S" | "N" for every key attribute of the table and its indexes
    attributes: dict[str, str] = field(default_factory=dict)
    indexes: tuple[Index, ...] = ()
    ttl: str | None = None  # the attribute DynamoDB's TTL expires items by (epoch seconds)


TABLES: tuple[TableSpec, ...] = (
    TableSpec("devices", "device_id",
              attributes={"device_id": "S", "organization_id": "S"},
              indexes=(Index(DEVICES_BY_ORGANIZATION, "organization_id", "device_id"),)),
    TableSpec("organizations", "kind", "organization_id",
              attributes={"kind": "S", "organization_id": "S"}),
    TableSpec("alerts", "alert_id",
              attributes={"alert_id": "S", "device_id": "S", "created_at": "S",
                          "org_state": "S", "state": "S"},
              indexes=(Index(ALERTS_BY_DEVICE, "device_id", "created_at"),
                       Index(ALERTS_BY_ORGANIZATION_STATE, "org_state", "created_at"),
                       Index(ALERTS_BY_STATE, "state", "created_at"))),
    TableSpec("alert-events", "alert_id", "event_key",
              attributes={"alert_id": "S", "event_key": "S"}),
    TableSpec("alert-rules", "kind", "rule_id", attributes={"kind": "S", "rule_id": "S"}),
    TableSpec("audit", "trail", "seq", attributes={"trail": "S", "seq": "N"}),
    # plugins/aws/telemetry/dynamo.py: device#metric#day partitions, reading time as sort key
    TableSpec("telemetry", "series_day", "ts_ms",
              attributes={"series_day": "S", "ts_ms": "N"}, ttl="expires_at"),
    TableSpec("telemetry-rollups", "series_day", "minute",
              attributes={"series_day": "S", "minute": "N"}, ttl="expires_at"),
    TableSpec("telemetry-latest", "device_id", "metric",
              attributes={"device_id": "S", "metric": "S"},
              indexes=(Index(TELEMETRY_BY_METRIC, "metric", "device_id"),)),
    # plugins/aws/dynamodb/idempotency.py: the REST API's Idempotency-Key answers (24 h)
    TableSpec("idempotency", "caller", "idem_key",
              attributes={"caller": "S", "idem_key": "S"}, ttl="expires_at_s"),
    # plugins/aws/jobs/records.py: what IoT Jobs does not keep about a deployment
    TableSpec("deployments", "deployment_id",
              attributes={"deployment_id": "S", "kind": "S", "created_key": "S"},
              indexes=(Index(DEPLOYMENTS_BY_CREATED, "kind", "created_key"),)),
    # plugins/aws/notifications/subscriptions.py: who gets an organization's alerts by e-mail
    TableSpec("notification-subscriptions", "organization_id", "email",
              attributes={"organization_id": "S", "email": "S"}),
    # plugins/aws/dynamodb/quarantine.py: device messages the stream consumer refused (30 days)
    TableSpec("quarantine", "device_key", "entry_key",
              attributes={"device_key": "S", "entry_key": "S", "reason": "S", "qday": "S"},
              indexes=(Index("ReasonIndex", "reason", "entry_key"),
                       Index("DayIndex", "qday", "entry_key")), ttl="expires_at"),
    # plugins/aws/stream/state.py: per device, the alert engine's evaluator state and the
    # stream position with the seq accounting (so a cold start or a second shard decides alike)
    TableSpec("alert-state", "device_id", attributes={"device_id": "S"}),
    TableSpec("stream-state", "device_id", attributes={"device_id": "S"}),
    # plugins/aws/dynamodb/trusted_keys.py: the code-signing public keys the team trusts
    TableSpec("trusted-keys", "kind", "key_id", attributes={"kind": "S", "key_id": "S"}),
    # plugins/aws/dynamodb/preferences.py: each person's console settings
    TableSpec("preferences", "user_name", attributes={"user_name": "S"}),
    # plugins/aws/dynamodb/command_answers.py: commands sent (a day) and the devices'
    # answers, which the answers IoT rule puts (a day)
    TableSpec("commands", "request_id", attributes={"request_id": "S"}, ttl="expires_at"),
    TableSpec("command-answers", "request_id", "device_id",
              attributes={"request_id": "S", "device_id": "S"}, ttl="expires_at"),
)


def table_request(spec: TableSpec, name: str) -> dict[str, Any]:
    """The CreateTable request (on-demand capacity, every index projecting the
    whole item: the console reads whole records from them)."""
    def schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
        keys = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        if range_key:
            keys.append({"AttributeName": range_key, "KeyType": "RANGE"})
        return keys

    request: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": schema(spec.hash_key, spec.range_key),
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": t}
                                 for a, t in sorted(spec.attributes.items())],
    }
    if spec.indexes:
        request["GlobalSecondaryIndexes"] = [
            {"IndexName": ix.name, "KeySchema": schema(ix.hash_key, ix.range_key),
             "Projection": {"ProjectionType": "ALL"}}
            for ix in spec.indexes]
    return request


def create_tables(client: Any, settings: AwsSettings,
                  specs: tuple[TableSpec, ...] = TABLES) -> list[str]:
    """Create every table of ``specs`` for the settings' stage and wait until
    they are active; tables that exist already are left as they are. Returns
    the table names."""
    names = []
    for spec in specs:
        name = settings.table(spec.role)
        # a table created before (a second sandbox start) is kept as it is
        with contextlib.suppress(client.exceptions.ResourceInUseException):
            client.create_table(**table_request(spec, name))
        names.append(name)
    waiter = client.get_waiter("table_exists")
    for name in names:
        waiter.wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    for spec, name in zip(specs, names, strict=True):
        if spec.ttl:
            ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                client.update_time_to_live(TableName=name, TimeToLiveSpecification={
                    "Enabled": True, "AttributeName": spec.ttl})
    return names
