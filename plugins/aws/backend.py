"""Assemble the AWS backend's ports from the profile.

Each adapter family lives in its own package (``dynamodb``, telemetry,
firmware, jobs, IoT data, Cognito); this module only picks them. Ports with
no adapter yet stay ``None`` (core.ports.backend), so pages say "not
available on this backend". Telemetry history is DynamoDB's time-series
layout or Timestream, as the profile's ``telemetry`` key says."""

from __future__ import annotations

import logging

from core.context import AppContext
from core.errors import SmartIotError
from core.ports.backend import Backend
from plugins.aws.clients import AwsClients, clients_for
from plugins.aws.cognito.directory import CACHE_S as DIRECTORY_CACHE_S
from plugins.aws.cognito.directory import CognitoUserDirectory
from plugins.aws.dynamodb.alerts import DynamoAlertStore
from plugins.aws.dynamodb.audit import DynamoAuditTrail
from plugins.aws.dynamodb.command_answers import DynamoCommandAnswers
from plugins.aws.dynamodb.idempotency import DynamoIdempotencyStore
from plugins.aws.dynamodb.preferences import DynamoPreferenceStore
from plugins.aws.dynamodb.quarantine import DynamoQuarantineStore
from plugins.aws.dynamodb.registry import DynamoDeviceRegistry
from plugins.aws.dynamodb.rules import DynamoAlertRuleStore
from plugins.aws.dynamodb.trusted_keys import DynamoTrustedKeyStore
from plugins.aws.firmware.s3 import S3FirmwareRepository
from plugins.aws.iot_data.commands import IotDataCommandChannel
from plugins.aws.iot_data.shadows import IotDataShadowService
from plugins.aws.jobs.service import deployments_over
from plugins.aws.settings import AwsSettings
from plugins.aws.telemetry.select import DEFAULT as DEFAULT_TELEMETRY
from plugins.aws.telemetry.select import telemetry_store
from plugins.aws.things import ThingRegistry, ThingSyncedRegistry

log = logging.getLogger(__name__)


class AwsBackend(Backend):
    def __init__(self, settings: AwsSettings, clients: AwsClients, *,
                 telemetry: str = DEFAULT_TELEMETRY) -> None:
        dynamodb = clients.dynamodb
        super().__init__(
            name="aws",
            # devices in DynamoDB, mirrored as IoT things (IoT Core, Jobs, fleet indexing)
            registry=ThingSyncedRegistry(DynamoDeviceRegistry(dynamodb, settings),
                                         ThingRegistry(clients.client("iot"))),
            alerts=DynamoAlertStore(dynamodb, settings),
            telemetry=telemetry_store(telemetry, settings, clients),
            rules=DynamoAlertRuleStore(dynamodb, settings),
            audit=DynamoAuditTrail(dynamodb, settings),
            firmware=S3FirmwareRepository(clients.client("s3"), settings),
        )
        self.settings = settings
        self.clients = clients
        # deployments: our record in DynamoDB, the rollout in IoT Jobs (plugins/aws/jobs)
        assert isinstance(self.firmware, S3FirmwareRepository)
        registry = self.registry
        self.deployments = deployments_over(
            clients, settings, self.firmware,
            organization_of=lambda d: (found.organization or None)
            if (found := registry.find(d)) is not None else None)
        iot_data = clients.client("iot-data")  # shadows and the command topic
        self.shadows = IotDataShadowService(iot_data)
        # answers meet their request in the command-answers table (their own IoT rule puts them)
        self.commands = IotDataCommandChannel(iot_data, self.registry,
                                              DynamoCommandAnswers(dynamodb, settings))
        # device messages the stream consumer refused (plugins/aws/stream)
        self.quarantine = DynamoQuarantineStore(dynamodb, settings)
        # Idempotency-Key answers of the REST API (plugins/api/idempotency.py)
        self.idempotency = DynamoIdempotencyStore(dynamodb, settings)
        # the code-signing public keys the team trusts: images and deployment manifests
        # are accepted only when one of them signed (the private keys stay with people)
        self.trusted_keys = DynamoTrustedKeyStore(dynamodb, settings)
        # each person's console settings (GET/PUT /users/me/preferences)
        self.preferences = DynamoPreferenceStore(dynamodb, settings)
        if settings.user_pool_id:  # people and roles: the stage's Cognito user pool
            self.users = CognitoUserDirectory(clients.client("cognito-idp"),
                                              settings.user_pool_id, cache_s=DIRECTORY_CACHE_S)

    def close(self) -> None:
        stop = getattr(self.live, "stop", None)  # the console's IoT Core link, if any
        if callable(stop):
            stop()


def build_aws_backend_for(settings: AwsSettings, *,
                          telemetry: str = DEFAULT_TELEMETRY) -> AwsBackend:
    """The backend for explicit settings (tests, the sandbox, Lambda wiring).

    Its clients are ``clients_for(settings)``'s: on a loopback endpoint with no
    credentials configured, dummy ones, so nothing can reach a real account."""
    return AwsBackend(settings, clients_for(settings), telemetry=telemetry)


def build_aws_backend(context: AppContext) -> AwsBackend:
    settings = AwsSettings.from_profile(context.config.profile)
    log.info("aws backend: region %s, stage %s%s", settings.region, settings.stage,
             f", endpoint {settings.endpoint_url}" if settings.endpoint_url else "")
    backend = build_aws_backend_for(settings, telemetry=context.config.profile.telemetry)
    if context.live and context.config.profile.api_url:
        # a console on the REST API: live data from IoT Core over WebSocket (plugins/aws/live)
        from plugins.aws.live.wiring import console_live_feed

        try:
            backend.live = console_live_feed(context)
        except SmartIotError as exc:
            log.warning("no live data on this console: %s", exc)
    return backend
