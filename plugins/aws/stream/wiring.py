"""The stream consumer and the ticker over the aws backend's adapters for a stage.

Only the adapters they use are built (not the whole ``AwsBackend``), so the
functions' code — and the IAM role serverless.yml derives from it — reaches
no further than DynamoDB, the thing registry, IoT Data's Publish and SQS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from core.model.timeutil import utcnow
from plugins.aws.clients import AwsClients, clients_for
from plugins.aws.dynamodb.alerts import DynamoAlertStore
from plugins.aws.dynamodb.quarantine import DynamoQuarantineStore
from plugins.aws.dynamodb.registry import DynamoDeviceRegistry
from plugins.aws.dynamodb.rules import DynamoAlertRuleStore
from plugins.aws.notifications.queue import AlertNotificationQueue, queue_name
from plugins.aws.settings import AwsSettings
from plugins.aws.stream.alert_feed import AlertFeed
from plugins.aws.stream.consumer import StreamConsumer
from plugins.aws.stream.state import DeviceStateTables
from plugins.aws.stream.ticker import AlertTicker
from plugins.aws.telemetry.select import telemetry_store
from plugins.aws.things import ThingRegistry, ThingSyncedRegistry


@dataclass(frozen=True)
class _Parts:
    clients: AwsClients
    registry: ThingSyncedRegistry
    alerts: DynamoAlertStore
    rules: DynamoAlertRuleStore
    states: DeviceStateTables
    feed: AlertFeed


def _parts(settings: AwsSettings, queue_url: str, clients: AwsClients | None, *,
           stream: bool = True) -> _Parts:
    """``queue_url`` empty: the queue ``iot-notifications-{stage}`` is looked up
    (the sandbox; on AWS the stack passes its URL). ``stream=False``: no
    stream-state table (the ticker's role does not name it)."""
    clients = clients or clients_for(settings)
    db = clients.dynamodb
    sqs = clients.client("sqs")
    url = queue_url or str(sqs.get_queue_url(QueueName=queue_name(settings.stage))["QueueUrl"])
    return _Parts(clients,
                  ThingSyncedRegistry(DynamoDeviceRegistry(db, settings),
                                      ThingRegistry(clients.client("iot"))),
                  DynamoAlertStore(db, settings), DynamoAlertRuleStore(db, settings),
                  DeviceStateTables(db, settings, stream=stream),
                  AlertFeed(clients.client("iot-data"), AlertNotificationQueue(sqs, url)))


def build_consumer(settings: AwsSettings, *, telemetry: str = "dynamodb", queue_url: str = "",
                   registration: str = "", clients: AwsClients | None = None) -> StreamConsumer:
    """``registration``: the registration policy for every organization (empty:
    open). ``clients``: made already (tests that listen to their requests)."""
    from core.ingest.ingestor import RegistrationPolicy
    from core.services.alerting.builtin import BUILTIN_RULE_TYPES

    parts = _parts(settings, queue_url, clients)
    policies = {"*": RegistrationPolicy.parse(registration)} if registration else {}
    return StreamConsumer(
        registry=parts.registry, telemetry=telemetry_store(telemetry, settings, parts.clients),
        alerts=parts.alerts, rules=parts.rules, rule_types=BUILTIN_RULE_TYPES,
        quarantine=DynamoQuarantineStore(parts.clients.dynamodb, settings),
        states=parts.states, feed=parts.feed, registration=policies)


def build_ticker(settings: AwsSettings, *, queue_url: str = "",
                 clients: AwsClients | None = None,
                 clock: Callable[[], datetime] = utcnow) -> AlertTicker:
    """The once-a-minute housekeeping over the same tables as the consumer."""
    from core.services.alerting.builtin import BUILTIN_RULE_TYPES

    parts = _parts(settings, queue_url, clients, stream=False)
    return AlertTicker(registry=parts.registry, alerts=parts.alerts, rules=parts.rules,
                       rule_types=BUILTIN_RULE_TYPES, states=parts.states, feed=parts.feed,
                       clock=clock)
