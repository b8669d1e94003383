"""The REST API as the AWS backend's Lambda function: serverless.yml names
``plugins.aws.lambdas.api.handler`` behind API Gateway (REST, proxy
integration) with the stage's Cognito authorizer.

The routes are the REST API's own (plugins/api): the same use cases, role
checks and audit entries as the console and the CLI, over the aws backend.
A container builds them once, on its first request, from its environment
(plugins/aws/lambdas/environment.py) and keeps them for every later request.
Who calls is what the authorizer verified and put into
``requestContext.authorizer.claims`` (``cognito:username``,
``cognito:groups``, ``custom:organization``); a role or a user in the body or
a header is never read. The user directory (the pool) has the last word on
the role and on a disabled account (UserService.effective_actor), so a
demotion counts before the person's token expires.

Besides the REST API's routes this function answers ``POST /me/iot-access``
(plugins/aws/iot_access.py): a console's Cognito identity gets the stage's IoT
policy, which IoT Core needs before it lets the console receive live data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.ports.idempotency import IdempotencyStore
from plugins.api.app import make_handler
from plugins.api.caller import Caller
from plugins.api.responses import envelope
from plugins.api.wiring import ApiServices, build_api_services
from plugins.aws.iot_access import ConsoleIotAccess, console_policy_name, iot_access_router
from plugins.aws.lambdas import environment as env
from plugins.aws.settings import AwsSettings
from plugins.aws.telemetry.select import DEFAULT as DEFAULT_TELEMETRY

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ApiParts:
    """What the handler needs from the backend: the use cases, and the store
    that makes a retried change (same Idempotency-Key) run once."""

    services: ApiServices
    idempotency: IdempotencyStore | None
    iot_access: ConsoleIotAccess | None = None  # None: the stage names no identity pool


def settings_from_environment() -> AwsSettings:
    """The stage, region, endpoint and user pool the function was deployed with."""
    endpoint = env.read(env.ENDPOINT_URL)
    return AwsSettings(region=env.read(env.REGION, "us-east-1" if endpoint else ""),
                       stage=env.read(env.STAGE, "dev"), endpoint_url=endpoint,
                       user_pool_id=env.read(env.USER_POOL_ID))


def build_parts(settings: AwsSettings, telemetry: str = DEFAULT_TELEMETRY,
                identity_pool_id: str | None = None) -> ApiParts:
    """The API's use cases over the aws backend of ``settings``; consoles' IoT
    access through ``identity_pool_id`` (None: the function's environment)."""
    from plugins.aws.backend import build_aws_backend_for

    backend = build_aws_backend_for(settings, telemetry=telemetry)
    pool = env.read(env.IDENTITY_POOL_ID) if identity_pool_id is None else identity_pool_id
    access = None
    if pool and settings.user_pool_id:
        clients = backend.clients
        access = ConsoleIotAccess(clients.client("iot"), clients.client("cognito-identity"),
                                  identity_pool_id=pool, region=settings.region,
                                  user_pool_id=settings.user_pool_id,
                                  policy_name=console_policy_name(settings.stage))
    return ApiParts(build_api_services(backend), getattr(backend, "idempotency", None), access)


class Once:
    """The parts of this container, built on first use and kept (thread-safe:
    the local server calls the handler from several threads)."""

    def __init__(self, build: Callable[[], ApiParts]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._parts: ApiParts | None = None

    def __call__(self) -> ApiParts:
        with self._lock:
            if self._parts is None:
                self._parts = self._build()
            return self._parts


def make_api_handler(parts: Callable[[], ApiParts]) -> Handler:
    """The Lambda handler over ``parts`` (called on each request: pass a :class:`Once`)."""
    handler = make_handler(lambda: parts().services, idempotency=lambda: parts().idempotency)
    app = handler.app  # type: ignore[attr-defined]
    caller = Caller(app, lambda: parts().services)
    app.include_router(iot_access_router(lambda: parts().iot_access, caller.actor, envelope))
    return handler


_handle = make_api_handler(Once(lambda: build_parts(
    settings_from_environment(), env.read(env.TELEMETRY, DEFAULT_TELEMETRY))))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """API Gateway's proxy event in, its proxy answer out."""
    return _handle(event, context)
