"""Lambda ``alert_ticker``: once a minute (an EventBridge schedule), what the
hub's housekeeping does — devices silent for 2 minutes go offline, and the
alert engine's ``tick`` lets ``no_data`` rules fire and clear
(plugins/aws/stream/ticker.py). Same settings as the telemetry consumer."""

from __future__ import annotations

import functools
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger

from plugins.aws.lambdas import environment as env
from plugins.aws.stream.ticker import AlertTicker

logger = Logger(service="alert-ticker")


@functools.lru_cache(maxsize=4)
def _ticker(stage: str, region: str, endpoint_url: str, queue_url: str) -> AlertTicker:
    from plugins.aws.settings import AwsSettings
    from plugins.aws.stream.wiring import build_ticker

    return build_ticker(AwsSettings(region=region, stage=stage, endpoint_url=endpoint_url),
                        queue_url=queue_url)


def ticker_from_environment() -> AlertTicker:
    endpoint = env.read(env.ENDPOINT_URL)
    return _ticker(env.read(env.STAGE, "dev"),
                   env.read(env.REGION, "us-east-1" if endpoint else ""), endpoint,
                   env.read(env.NOTIFY_QUEUE_URL))


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """``event``: EventBridge's scheduled event (its content is not needed:
    the ticker reads the clock itself)."""
    outcome = asdict(ticker_from_environment().tick())
    logger.info("tick", extra=outcome)
    return outcome
