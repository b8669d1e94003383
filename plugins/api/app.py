"""The REST API: API Gateway (REST, proxy integration) events in, the Smart_IOT
envelope out.

This module only puts the API together: the resolver, how errors become
answers, and the routers of each area (``plugins/api/routes/<area>.py``),
which parse the request, call one use case with the caller's Actor and shape
the answer. Role checks, organization scope, audit entries and versioned
saves all happen in the use cases, so a refusal here is the same refusal the
console and the CLI give. Domain errors become 400/401/403/404/409, an
oversized body 413, a caller over its rate 429; anything unexpected is logged
with the request's correlation id and answered 500 without a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from core.errors import (
    AccessNotGranted,
    ConcurrentModification,
    IllegalTransition,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    SignInExpired,
    SmartIotError,
    ValidationError,
)
from core.ports.idempotency import IdempotencyStore
from core.services.accounts import SignInFailed, SignInService
from plugins.api.auth import Unauthorized
from plugins.api.caller import Caller
from plugins.api.idempotency import IdempotencyGate
from plugins.api.openapi import API_VERSION, openapi_json
from plugins.api.rate_limit import RateLimit
from plugins.api.responses import (
    CORS_HEADERS,
    MAX_BODY_BYTES,
    MAX_FIRMWARE_BYTES,
    PayloadTooLarge,
    TooManyRequests,
    envelope,
    error,
)
from plugins.api.routes.alerts import alerts_router
from plugins.api.routes.analytics import analytics_router
from plugins.api.routes.audit import audit_router
from plugins.api.routes.auth import auth_router
from plugins.api.routes.deployments import deployments_router
from plugins.api.routes.devices import devices_router
from plugins.api.routes.firmware import firmware_router
from plugins.api.routes.users import users_router
from plugins.api.wiring import ApiServices

# Older imports of these names from here keep working (routers, the CLI, tests).
__all__ = ["API_VERSION", "CORS_HEADERS", "MAX_BODY_BYTES", "MAX_FIRMWARE_BYTES",
           "PayloadTooLarge", "RateLimit", "TooManyRequests", "build_app", "envelope", "error",
           "make_handler", "openapi_json"]

logger = Logger(service="smartiot-api")

_STATUS: list[tuple[type[SmartIotError], int, str]] = [
    (Unauthorized, 401, "UNAUTHORIZED"),
    (SignInFailed, 401, "UNAUTHORIZED"),
    # The backend's own trouble with a service behind it (AWS throttling, a
    # table missing, the API's role not allowed an action, its credentials
    # expired): not the caller's request, so 503 and a queued change is kept
    # and sent again, the message naming the resource (plugins/aws/errors.py).
    (ServiceUnavailable, 503, "SERVICE_UNAVAILABLE"),
    (AccessNotGranted, 503, "SERVICE_UNAVAILABLE"),
    (SignInExpired, 503, "SERVICE_UNAVAILABLE"),
    (PermissionDenied, 403, "FORBIDDEN"),
    (NotFound, 404, "NOT_FOUND"),
    (ConcurrentModification, 409, "CONFLICT"),
    (IllegalTransition, 409, "CONFLICT"),
    (PayloadTooLarge, 413, "PAYLOAD_TOO_LARGE"),
    (TooManyRequests, 429, "TOO_MANY_REQUESTS"),
    (ValidationError, 400, "VALIDATION_ERROR"),
]


def build_app(services: Callable[[], ApiServices], *,
              rate_limit: RateLimit | None = None,
              sign_in: Callable[[], SignInService | None] | None = None
              ) -> APIGatewayRestResolver:
    """The routes over ``services`` (called per request, so a Lambda container
    builds them once on first use and tests can pass their own). ``sign_in``:
    the /auth routes' use cases where this server keeps accounts (the hub)."""
    app = APIGatewayRestResolver(
        enable_validation=True,
        cors=CORSConfig(allow_origin="*", allow_headers=["If-Match", "Idempotency-Key"],
                        expose_headers=["ETag", "X-Correlation-Id", "Retry-After",
                                        "Idempotent-Replayed"]))
    _map_errors(app)
    caller = Caller(app, services, rate_limit)
    actor = caller.actor
    app.include_router(devices_router(services, actor))
    app.include_router(alerts_router(services, actor, caller.check_version))
    app.include_router(users_router(services, actor, caller.int_if_match))
    app.include_router(firmware_router(services, actor))
    app.include_router(deployments_router(services, actor))
    app.include_router(auth_router(sign_in or (lambda: None), actor, caller.client))
    app.include_router(analytics_router(services, actor))
    app.include_router(audit_router(services, actor))

    @app.get("/openapi.json", summary="This document", tags=["meta"], include_in_schema=False)
    def openapi() -> Response[Any]:
        return Response(200, "application/json", openapi_json(app), headers=CORS_HEADERS)

    return app


def _map_errors(app: APIGatewayRestResolver) -> None:
    """Every failure as the error envelope: bad input 400 naming the field, domain
    errors by kind (``_STATUS``), anything else 500 with the correlation id."""

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid(exc: RequestValidationError) -> Response[Any]:
        details = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path",
                                                                  "header")]
            if e.get("type") == "json_invalid":
                loc = ["body"]
            details.append({"field": ".".join(loc) or "body", "message": e.get("msg", "")})
        first = details[0] if details else {"field": "body", "message": "invalid"}
        return error(400, "VALIDATION_ERROR", f"{first['field']}: {first['message']}", details)

    @app.exception_handler(SmartIotError)  # type: ignore[untyped-decorator]
    def _domain(exc: SmartIotError) -> Response[Any]:
        for kind, status, code in _STATUS:
            if isinstance(exc, kind):
                details = None
                if isinstance(exc, ConcurrentModification) and exc.changed_by:
                    details = {"changed_by": exc.changed_by}
                if isinstance(exc, ServiceUnavailable):
                    # the part without advice: a console's outbox adds its own
                    details = {"reason": exc.reason, "service": exc.service,
                               "resource": exc.resource}
                answer = error(status, code, str(exc), details)
                wait = getattr(exc, "retry_after_s", None)
                if isinstance(exc, TooManyRequests | ServiceUnavailable) and wait:
                    # a new dict: error() hands over the shared CORS_HEADERS
                    answer.headers = {**answer.headers, "Retry-After": str(max(1, round(wait)))}
                return answer
        return error(400, "BAD_REQUEST", str(exc))

    @app.not_found
    def _no_route(exc: Exception) -> Response[Any]:
        event = app.current_event
        return error(404, "NOT_FOUND", f"no route {event.http_method} {event.path}")

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _unexpected(exc: Exception) -> Response[Any]:
        logger.exception("unexpected error")
        return error(500, "INTERNAL_ERROR",
                     "the server could not answer; the error is logged under correlation id "
                     f"{app.current_event.request_context.request_id}")


def make_handler(services: Callable[[], ApiServices], *,
                 rate_limit: RateLimit | None = None,
                 sign_in: Callable[[], SignInService | None] | None = None,
                 idempotency: Callable[[], IdempotencyStore | None] | None = None
                 ) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A Lambda handler over ``services``: checks the body's size, sets the
    correlation id for every log line of the request, and resolves the route
    (a change with an ``Idempotency-Key`` through ``idempotency``'s store:
    plugins/api/idempotency.py)."""
    app = build_app(services, rate_limit=rate_limit, sign_in=sign_in)
    gate = IdempotencyGate(idempotency or (lambda: None))

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        request_id = str((event.get("requestContext") or {}).get("requestId") or "")
        logger.set_correlation_id(request_id or None)
        body = event.get("body") or ""
        limit = MAX_FIRMWARE_BYTES * 4 // 3 + 4096 if event.get("path") == "/firmware/upload" \
            else MAX_BODY_BYTES
        if len(body) > limit:
            too_big = error(413, "PAYLOAD_TOO_LARGE",
                            f"body: {len(body)} bytes is more than {limit}")
            return {"statusCode": 413, "body": too_big.body,
                    "headers": {**CORS_HEADERS, "Content-Type": "application/json"},
                    "isBase64Encoded": False}
        result = gate(event, lambda e: app.resolve(e, context))
        headers = result.setdefault("multiValueHeaders", {})
        headers["X-Correlation-Id"] = [request_id]
        return result

    handler.app = app  # type: ignore[attr-defined]
    return handler
