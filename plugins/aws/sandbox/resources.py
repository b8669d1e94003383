"""Every resource of a stage, created on the sandbox's endpoint, and the
functions that run on them.

The sandbox needs the stack's resources and their physical ids (the user
pool's id, the queue's URL...) and what serverless.yml says of each function
(its handler, environment and event sources). :func:`provision` creates the
template's resources with ``plugins.aws.infra.provision`` — what the sandbox
runs on is what the stack deploys — and reads the functions from the same
template."""

from __future__ import annotations

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


def provision(clients: Any, settings: AwsSettings) -> StageResources:
    """Create (or keep) every resource of the stage and return their ids."""
    from plugins.aws.infra.provision import provision as from_template
    from plugins.aws.infra.template import Template

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
