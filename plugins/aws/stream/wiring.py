"""The stream consumer over the aws backend's adapters for a stage."""

from __future__ import annotations

from plugins.aws.backend import AwsBackend, build_aws_backend_for
from plugins.aws.dynamodb.quarantine import DynamoQuarantineStore
from plugins.aws.notifications.queue import AlertNotificationQueue, queue_name
from plugins.aws.settings import AwsSettings
from plugins.aws.stream.alert_feed import AlertFeed
from plugins.aws.stream.consumer import StreamConsumer
from plugins.aws.stream.state import DeviceStateTables


def build_consumer(settings: AwsSettings, *, telemetry: str = "dynamodb", queue_url: str = "",
                   registration: str = "", backend: AwsBackend | None = None) -> StreamConsumer:
    """``queue_url`` empty: the queue ``iot-notifications-{stage}`` is looked up
    (the sandbox; on AWS the stack passes its URL). ``registration``: the
    registration policy for every organization (empty: open). ``backend``: one
    built already (tests that listen to its clients)."""
    from core.ingest.ingestor import RegistrationPolicy
    from core.services.alerting.builtin import BUILTIN_RULE_TYPES

    backend = backend or build_aws_backend_for(settings, telemetry=telemetry)
    clients = backend.clients
    sqs = clients.client("sqs")
    url = queue_url or str(sqs.get_queue_url(QueueName=queue_name(settings.stage))["QueueUrl"])
    policies = {"*": RegistrationPolicy.parse(registration)} if registration else {}
    assert backend.registry is not None and backend.telemetry is not None
    assert backend.alerts is not None and backend.rules is not None
    return StreamConsumer(
        registry=backend.registry, telemetry=backend.telemetry, alerts=backend.alerts,
        rules=backend.rules, rule_types=BUILTIN_RULE_TYPES,
        quarantine=DynamoQuarantineStore(clients.dynamodb, settings),
        states=DeviceStateTables(clients.dynamodb, settings),
        feed=AlertFeed(clients.client("iot-data"), AlertNotificationQueue(sqs, url)),
        registration=policies)
