"""Lambda ``notifications``: the SQS queue of alert notifications to e-mail.

Event source: ``iot-notifications-{stage}`` (batch size up to 10, with
``ReportBatchItemFailures``). Each record is one alert raised or resolved
(plugins/aws/notifications/queue.py); it goes to the organization's
subscribers (``iot-notification-subscriptions-{stage}``) through SES.

What happens to a record, and why:

- **malformed** (not JSON, a missing or wrong field): logged with SQS's
  message id and the reason, counted (``MalformedNotifications``), and
  acknowledged. It can never be delivered, so retrying it would only hold
  it up to the dead-letter queue and hide the real failures there.
- **a transient failure** (SES throttling, SES unreachable, the sender not
  verified, the subscriptions table unreadable): a batch item failure. SQS
  delivers that record again after the visibility timeout (the rest of the
  batch is done); after 5 receives it moves to the dead-letter queue.
- **an address SES refuses**: logged and counted (``NotificationsRefused``);
  the other subscribers got the e-mail, the record is done.
- **a raised critical alert nobody subscribed to**: logged as an error and
  counted (``CriticalAlertsUnrouted``): an alarm on that metric is how a
  team learns its subscriptions have a hole.

Metrics go out as CloudWatch embedded metric format (namespace ``SmartIoT``,
service ``notifications``) in the function's log.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from core.ports.notifications import TransientDeliveryError
from plugins.aws.lambdas import environment as env
from plugins.aws.notifications.dispatcher import NotificationDispatcher
from plugins.aws.notifications.queue import MalformedNotification, parse_notification

SERVICE = "notifications"
NAMESPACE = "SmartIoT"

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)


@functools.lru_cache(maxsize=4)
def _dispatcher(stage: str, region: str, endpoint_url: str, sender: str,
                console_url: str) -> NotificationDispatcher:
    """Built once per container (and per configuration, for the tests)."""
    from plugins.aws.clients import AwsClients
    from plugins.aws.notifications.ses import SesEmailChannel
    from plugins.aws.notifications.subscriptions import TABLE_ROLE, SubscriptionStore
    from plugins.aws.settings import AwsSettings

    settings = AwsSettings(region=region, stage=stage, endpoint_url=endpoint_url)
    clients = AwsClients(settings)
    return NotificationDispatcher(
        SubscriptionStore(clients.dynamodb, settings.table(TABLE_ROLE)),
        SesEmailChannel(clients.client("ses"), sender, console_url=console_url))


def dispatcher_from_environment() -> NotificationDispatcher:
    sender = env.read(env.NOTIFY_SENDER)
    if not sender:
        raise RuntimeError(f"{env.NOTIFY_SENDER} is not set: alert e-mail needs an SES-verified "
                           "sender address")
    return _dispatcher(env.read(env.STAGE, "dev"), env.read(env.REGION, "us-east-1"),
                       env.read(env.ENDPOINT_URL), sender, env.read(env.CONSOLE_URL))


def _count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def _record_handler(record: SQSRecord) -> None:
    try:
        notification = parse_notification(record.body)
    except MalformedNotification as exc:
        logger.error("notification message dropped: it cannot be delivered",
                     extra={"message_id": record.message_id, "reason": str(exc)})
        _count("MalformedNotifications")
        return
    alert = notification.alert
    context = {"message_id": record.message_id, "alert_id": alert.alert_id,
               "device_id": alert.device_id, "kind": notification.kind.value,
               "severity": alert.severity.value}
    try:
        outcome = dispatcher_from_environment().dispatch(notification)
    except TransientDeliveryError as exc:
        logger.warning("notification will be retried", extra={**context, "reason": str(exc)})
        _count("NotificationsRetried")
        raise
    except Exception as exc:  # the subscriptions table unreadable, a bug: retry, then DLQ
        logger.exception("notification failed; it will be retried",
                         extra={**context, "reason": f"{type(exc).__name__}: {exc}"})
        _count("NotificationsRetried")
        raise
    if outcome.refused:
        _count("NotificationsRefused", len(outcome.refused))
    if outcome.critical_unrouted:
        _count("CriticalAlertsUnrouted")
    _count("NotificationsSent", len(outcome.delivered))
    logger.info("notification dispatched",
                extra={**context, "recipients": len(outcome.delivered),
                       "refused": sorted(outcome.refused)})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The SQS event in; ``{"batchItemFailures": [{"itemIdentifier": id}, ...]}``
    out, naming the records SQS must deliver again."""
    # a batch whose every record failed (SES throttled them all) is answered
    # like any other: each record listed, not an exception that would also
    # make Lambda retry the whole invocation
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    try:
        return dict(process_partial_response(event=event, record_handler=_record_handler,
                                             processor=processor, context=context))
    finally:
        metrics.flush_metrics()
