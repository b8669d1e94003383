"""Every resource of a stage, created on the sandbox's endpoint, and the
functions that run on them.

The sandbox needs the stack's resources and their physical ids (the user
pool's id, the queue's URL...) and what serverless.yml says of each function
(its handler, environment and event sources). :func:`provision` creates the
template's resources with ``plugins.aws.infra.provision`` — what the sandbox
runs on is what the stack deploys — and reads the functions from the same
template. :func:`create_stage_resources` is the older hand-written set, kept
for a build without the template package."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from plugins.aws.settings import AwsSettings

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class LambdaSpec:
    """A function of the template, as the sandbox runs it in-process."""

    name: str  # the key under `functions:` (telemetryConsumer, ...)
    handler: str  # module:attribute
    environment: dict[str, str] = field(default_factory=dict)  # intrinsics resolved
    events: tuple[dict[str, Any], ...] = ()  # `stream:` / `sqs:` / `http:` entries


@dataclass(frozen=True)
class StageResources:
    """The physical ids the sandbox wires together and prints."""

    telemetry_stream: str
    notifications_queue_url: str
    user_pool_id: str
    user_pool_client_id: str
    identity_pool_id: str
    firmware_bucket: str
    sender_email: str = "fleet-alerts@example.com"
    functions: dict[str, LambdaSpec] = field(default_factory=dict)
    # the template's logical ids -> Ref values (a queue's URL...), for the
    # functions' event settings that name resources (on-failure destinations)
    physical: dict[str, str] = field(default_factory=dict)
    # resources of the template moto cannot make: logical id -> why
    not_created: dict[str, str] = field(default_factory=dict)


def stream_name(settings: AwsSettings) -> str:
    return f"iot-telemetry-stream-{settings.stage}"


def queue_name(settings: AwsSettings) -> str:
    return f"iot-notifications-{settings.stage}"


def provision(clients: Any, settings: AwsSettings) -> StageResources:
    """Create (or keep) every resource of the stage and return their ids."""
    try:
        from plugins.aws.infra.provision import provision as from_template
        from plugins.aws.infra.template import Template
    except ImportError:
        return create_stage_resources(clients, settings)
    template = Template.load(settings.stage, settings.region)
    made = from_template(clients, template=template)
    _tables_the_code_uses(clients, settings)
    functions = {}
    for name, function in template.functions.items():
        raw = {**(template.section("provider", "environment") or {}),
               **(template.section("functions", name).get("environment") or {})}
        environment = {key: _resolved(value, made.physical, made.attributes, f"{name}.{key}")
                       for key, value in raw.items()}
        functions[name] = LambdaSpec(name, f"{function.module}:{function.attribute}",
                                     environment, function.events)
    sender = next((f.environment[SENDER] for f in functions.values()
                   if f.environment.get(SENDER)), StageResources.sender_email)
    return StageResources(
        telemetry_stream=made.telemetry_stream,
        notifications_queue_url=made.notifications_queue_url,
        user_pool_id=made.user_pool_id, user_pool_client_id=made.user_pool_client_id,
        identity_pool_id=made.identity_pool_id, firmware_bucket=made.firmware_bucket,
        sender_email=sender, functions=functions, physical=dict(made.physical),
        not_created=dict(made.skipped))


SENDER = "SMARTIOT_NOTIFY_SENDER"


def _tables_the_code_uses(clients: Any, settings: AwsSettings) -> None:
    """Tables the adapters use (plugins.aws.dynamodb.tables) that the template
    does not declare are created too, with a warning naming them: the sandbox
    keeps working while serverless.yml catches up, and says what to add."""
    from plugins.aws.dynamodb.tables import TABLES, create_tables

    dynamodb = clients.dynamodb
    existing: set[str] = set()
    for page in dynamodb.get_paginator("list_tables").paginate():
        existing.update(page["TableNames"])
    missing = tuple(spec for spec in TABLES if settings.table(spec.role) not in existing)
    if missing:
        log.warning("serverless.yml does not declare the tables %s; the sandbox creates them "
                    "from plugins/aws/dynamodb/tables.py",
                    ", ".join(settings.table(spec.role) for spec in missing))
        create_tables(dynamodb, settings, missing)


def _resolved(value: Any, physical: dict[str, str], attributes: dict[str, dict[str, str]],
              where: str) -> str:
    """A function's environment value with CloudFormation's ``Ref`` and
    ``Fn::GetAtt`` replaced by what was created."""
    if value is None:
        return ""
    if isinstance(value, dict) and "Ref" in value:
        return physical[str(value["Ref"])]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return attributes[str(logical_id)][str(attribute)]
    if isinstance(value, dict | list):
        raise ValueError(f"serverless.yml: the environment value of {where} uses an "
                         f"intrinsic the sandbox cannot resolve: {value!r}")
    return str(value)


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
