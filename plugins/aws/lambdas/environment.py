"""Every environment variable the Lambda functions read, in one place.

serverless.yml sets these on the functions; tests/integration/aws/test_iac.py
checks that what the template sets and what this module names are the same
set, so a renamed variable cannot leave a function reading an empty value on
AWS while every local test passes. Add a variable here (and in serverless.yml)
rather than calling ``os.environ`` in a handler."""

from __future__ import annotations

import os

STAGE = "SMARTIOT_STAGE"  # names every resource: iot-devices-<stage>, ...
REGION = "AWS_REGION"  # set by Lambda itself; read, never declared in serverless.yml
ENDPOINT_URL = "SMARTIOT_ENDPOINT_URL"  # the sandbox's moto server; empty on AWS
TELEMETRY = "SMARTIOT_TELEMETRY"  # "dynamodb" or "timestream"
NOTIFY_SENDER = "SMARTIOT_NOTIFY_SENDER"  # the SES-verified address alert e-mail comes from
CONSOLE_URL = "SMARTIOT_CONSOLE_URL"  # optional: alert e-mail links {url}/alerts/{alert_id}
USER_POOL_ID = "SMARTIOT_USER_POOL_ID"  # the stage's Cognito user pool (the user directory)
# the stage's identity pool: the API attaches the console IoT policy to a person's
# identity in it (plugins/aws/iot_access.py, POST /me/iot-access)
IDENTITY_POOL_ID = "SMARTIOT_IDENTITY_POOL_ID"
# the telemetry consumer: the notification queue's URL (empty: looked up by its name,
# iot-notifications-<stage>) and who may appear by just publishing (core.ingest's
# registration policy: open | known-only | rate-limited N/min; empty: open)
NOTIFY_QUEUE_URL = "SMARTIOT_NOTIFY_QUEUE_URL"
REGISTRATION = "SMARTIOT_REGISTRATION"

# Variables Lambda provides; the template must not declare them.
PROVIDED_BY_LAMBDA = frozenset({REGION})


def read(name: str, default: str = "") -> str:
    """The variable's value, or ``default`` when unset or empty."""
    return os.environ.get(name) or default
