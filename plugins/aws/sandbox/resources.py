"""Every resource of a stage, created on the sandbox's endpoint.

The sandbox needs the stack's resources and their physical ids (the user
pool's id, the queue's URL...). When the infrastructure package can create
them from the template (``plugins.aws.infra.provision``), that is used, so the
sandbox has exactly what serverless.yml declares; this module's own
:func:`create_stage_resources` is the stand-in until then and names things as
the template does. :func:`provision` is the one place that chooses."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

from plugins.aws.settings import AwsSettings

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class StageResources:
    """The physical ids the sandbox wires together and prints."""

    telemetry_stream: str
    notifications_queue_url: str
    user_pool_id: str
    user_pool_client_id: str
    identity_pool_id: str
    firmware_bucket: str
    alerts_topic_prefix: str = "alerts"  # consoles subscribe to alerts/{org}/#
    sender_email: str = "fleet-alerts@example.com"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def stream_name(settings: AwsSettings) -> str:
    return f"iot-telemetry-stream-{settings.stage}"


def queue_name(settings: AwsSettings) -> str:
    return f"iot-notifications-{settings.stage}"


def provision(clients: Any, settings: AwsSettings) -> StageResources:
    """Create (or keep) every resource of the stage and return their ids."""
    return create_stage_resources(clients, settings)


def create_stage_resources(clients: Any, settings: AwsSettings) -> StageResources:
    """``clients`` is a plugins.aws.clients.AwsClients on the sandbox's endpoint."""
    from plugins.aws.dynamodb.tables import create_tables
    from plugins.aws.firmware.s3 import create_bucket

    create_tables(clients.dynamodb, settings)
    bucket = create_bucket(clients.client("s3"), settings)

    kinesis = clients.client("kinesis")
    stream = stream_name(settings)
    with contextlib.suppress(kinesis.exceptions.ResourceInUseException):
        kinesis.create_stream(StreamName=stream, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream,
                                             WaiterConfig={"Delay": 1, "MaxAttempts": 30})

    sqs = clients.client("sqs")
    dead = sqs.create_queue(QueueName=f"{queue_name(settings)}-dlq")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(QueueName=queue_name(settings), Attributes={
        "VisibilityTimeout": "30",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": "5"}),
    })["QueueUrl"]

    sender = StageResources.sender_email
    clients.client("ses").verify_email_identity(EmailAddress=sender)

    iot = clients.client("iot")
    stream_arn = kinesis.describe_stream_summary(StreamName=stream)[
        "StreamDescriptionSummary"]["StreamARN"]
    rule = f"iot_telemetry_{settings.stage.replace('-', '_')}"
    with contextlib.suppress(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_topic_rule(ruleName=rule, topicRulePayload={
            "sql": "SELECT *, topic(2) AS organization_id, topic(3) AS device_id, "
                   "timestamp() AS received_at FROM 'dt/+/+/telemetry'",
            "awsIotSqlVersion": "2016-03-23",
            "ruleDisabled": False,
            "actions": [{"kinesis": {"streamName": stream, "partitionKey": "${topic(3)}",
                                     "roleArn": "arn:aws:iam::123456789012:role/iot-rule"}}],
        })
    log.debug("IoT rule %s -> %s", rule, stream_arn)

    pool_id, client_id = _user_pool(clients.client("cognito-idp"), settings)
    identity_pool_id = _identity_pool(clients.client("cognito-identity"), settings,
                                      pool_id, client_id)
    return StageResources(telemetry_stream=stream, notifications_queue_url=queue_url,
                          user_pool_id=pool_id, user_pool_client_id=client_id,
                          identity_pool_id=identity_pool_id, firmware_bucket=bucket)


def _user_pool(idp: Any, settings: AwsSettings) -> tuple[str, str]:
    """The stage's pool as plugins.aws.cognito declares it (groups = roles,
    ``custom:organization``, the console's SRP app client)."""
    from plugins.aws.cognito.pool import create_user_pool

    pool = create_user_pool(settings, idp)
    return pool.user_pool_id, pool.client_id


def _identity_pool(identity: Any, settings: AwsSettings, pool_id: str, client_id: str) -> str:
    name = f"iot_console_{settings.stage.replace('-', '_')}"
    pools = identity.list_identity_pools(MaxResults=60)["IdentityPools"]
    found = next((p["IdentityPoolId"] for p in pools if p["IdentityPoolName"] == name), None)
    if found is not None:
        return str(found)
    region = settings.region
    return str(identity.create_identity_pool(
        IdentityPoolName=name, AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[{
            "ProviderName": f"cognito-idp.{region}.amazonaws.com/{pool_id}",
            "ClientId": client_id, "ServerSideTokenCheck": False}],
    )["IdentityPoolId"])
