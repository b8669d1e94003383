"""The REST API's Lambda handlers: API Gateway (REST, proxy integration) events
in, the Smart_IOT envelope out.

A handler parses the request (pydantic models through Powertools' event
handler), takes the Actor from the authorizer's claims, calls one use case
and shapes the answer. Role checks, organization scope, audit entries and
versioned saves all happen in the use cases, so a refusal here is the same
refusal the console and the CLI give. Domain errors become 400/403/404/409,
an oversized body 413, a caller over its rate 429; anything unexpected is
logged with the request's correlation id and answered 500 without a traceback.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from core.errors import (
    ConcurrentModification,
    IllegalTransition,
    NotFound,
    PermissionDenied,
    SmartIotError,
    ValidationError,
)
from core.model.roles import Actor
from core.services.accounts import SignInFailed, SignInService
from plugins.api.auth import PUBLIC_PATHS, Unauthorized, actor_from_claims
from plugins.api.wiring import ApiServices

logger = Logger(service="smartiot-api")

API_VERSION = "1.0.0"
MAX_BODY_BYTES = 1024 * 1024
MAX_FIRMWARE_BYTES = 16 * 1024 * 1024
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Content-Type,Authorization,If-Match",
    "Access-Control-Allow-Methods": "GET,POST,PUT,DELETE,OPTIONS",
    "Access-Control-Expose-Headers": "ETag,X-Correlation-Id",
}


class PayloadTooLarge(SmartIotError):
    """HTTP 413."""


class TooManyRequests(SmartIotError):
    """HTTP 429."""


_STATUS: list[tuple[type[SmartIotError], int, str]] = [
    (Unauthorized, 401, "UNAUTHORIZED"),
    (SignInFailed, 401, "UNAUTHORIZED"),
    (PermissionDenied, 403, "FORBIDDEN"),
    (NotFound, 404, "NOT_FOUND"),
    (ConcurrentModification, 409, "CONFLICT"),
    (IllegalTransition, 409, "CONFLICT"),
    (PayloadTooLarge, 413, "PAYLOAD_TOO_LARGE"),
    (TooManyRequests, 429, "TOO_MANY_REQUESTS"),
    (ValidationError, 400, "VALIDATION_ERROR"),
]


def envelope(data: Any, status: int = 200, headers: dict[str, str] | None = None
             ) -> Response[Any]:
    return Response(status, "application/json",
                    json.dumps({"success": True, "data": data}, default=str),
                    headers={**CORS_HEADERS, **(headers or {})})


def error(status: int, code: str, message: str, details: Any = None) -> Response[Any]:
    return Response(status, "application/json",
                    json.dumps({"success": False, "error": {
                        "code": code, "message": message, "details": details}}, default=str),
                    headers=CORS_HEADERS)


class RateLimit:
    """Requests per minute per user, as a token bucket (API Gateway's usage plans
    do this on AWS; locally one process answers everyone)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, user: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(user, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - at) * self.per_minute / 60)
            if tokens < 1:
                self._buckets[user] = (tokens, now)
                raise TooManyRequests(f"{user} sent more than {self.per_minute} requests a "
                                      "minute; wait a moment and retry")
            self._buckets[user] = (tokens - 1, now)


def build_app(services: Callable[[], ApiServices], *,
              rate_limit: RateLimit | None = None,
              sign_in: Callable[[], SignInService | None] | None = None
              ) -> APIGatewayRestResolver:
    """The routes over ``services`` (called per request, so a Lambda container
    builds them once on first use and tests can pass their own). ``sign_in``:
    the /auth routes' use cases where this server keeps accounts (the hub)."""
    app = APIGatewayRestResolver(
        enable_validation=True,
        cors=CORSConfig(allow_origin="*", allow_headers=["If-Match"],
                        expose_headers=["ETag", "X-Correlation-Id"]))

    def actor() -> Actor:
        context = app.current_event.raw_event.get("requestContext") or {}
        claims = (context.get("authorizer") or {}).get("claims")
        who = actor_from_claims(claims)
        if rate_limit is not None:
            rate_limit.take(who.user)
        # A person in the user directory acts with its role and organization, and a
        # disabled account is refused (403), as in the console and the CLI.
        return services().users.effective_actor(who)

    def if_match() -> str | None:
        value = app.current_event.headers.get("If-Match")
        return value.strip().strip('"').removeprefix("W/").strip('"') if value else None

    def check_version(current: str | int, what: str) -> None:
        wanted = if_match()
        if wanted is not None and wanted != "*" and wanted != str(current):
            raise ConcurrentModification(
                f"{what} changed since version {wanted} (now {current}); read it again and "
                "retry")

    def int_if_match() -> int | None:
        wanted = if_match()
        if wanted is None or wanted == "*":
            return None
        try:
            return int(wanted)
        except ValueError:
            raise ValidationError(f"If-Match: {wanted!r} is not a version number") from None

    # ------------------------------------------------------------ errors
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
                return error(status, code, str(exc), details)
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

    # ------------------------------------------------------------ devices
    from plugins.api.routes.devices import devices_router

    app.include_router(devices_router(services, actor))

    # ------------------------------------------------------------ alerts and rules
    from plugins.api.routes.alerts import alerts_router

    app.include_router(alerts_router(services, actor, check_version))

    # ------------------------------------------------------------ users
    from plugins.api.routes.users import users_router

    app.include_router(users_router(services, actor, int_if_match))

    # ------------------------------------------------------------ firmware and deployments
    from plugins.api.routes.deployments import deployments_router
    from plugins.api.routes.firmware import firmware_router

    app.include_router(firmware_router(services, actor))
    app.include_router(deployments_router(services, actor))

    # ------------------------------------------------------------ signing in
    from plugins.api.routes.auth import auth_router

    def client() -> str:
        identity = (app.current_event.raw_event.get("requestContext") or {}).get("identity")
        return str((identity or {}).get("sourceIp") or "")

    app.include_router(auth_router(sign_in or (lambda: None), actor, client))

    # ------------------------------------------------------------ analytics and audit
    from plugins.api.routes.analytics import analytics_router
    from plugins.api.routes.audit import audit_router

    app.include_router(analytics_router(services, actor))
    app.include_router(audit_router(services, actor))

    @app.get("/openapi.json", summary="This document", tags=["meta"], include_in_schema=False)
    def openapi() -> Response[Any]:
        return Response(200, "application/json", openapi_json(app), headers=CORS_HEADERS)

    return app


_ERROR_ANSWERS = {
    "400": "Bad input; message starts with the field, details list each field",
    "401": "No verified identity",
    "403": "The caller's role may not do this",
    "404": "Unknown, outside the caller's organization, or not offered by this backend",
    "409": "Stale If-Match, changed by someone else first, or refused by the lifecycle",
    "413": "Body too large",
    "429": "Too many requests a minute",
}


def openapi_json(app: APIGatewayRestResolver) -> str:
    """Powertools' document from the models and routes, told the truth about
    the answers: the envelope, 400 (not FastAPI's 422) for bad input, the other
    error statuses, and the bearer token every route but this one needs."""
    doc = json.loads(app.get_openapi_json_schema(
        title="Smart IoT Fleet API", version=API_VERSION,
        description="Devices, alerts, users, firmware and analytics of one fleet. Every answer "
        "is {\"success\": true, \"data\": ...} or {\"success\": false, \"error\": {\"code\", "
        "\"message\", \"details\"}}. See docs/api.md."))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    schemas["Envelope"] = {"type": "object", "required": ["success", "data"], "properties": {
        "success": {"type": "boolean", "const": True}, "data": {}}}
    schemas["ErrorEnvelope"] = {"type": "object", "required": ["success", "error"],
                                "properties": {
        "success": {"type": "boolean", "const": False},
        "error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string"}, "message": {"type": "string"}, "details": {}}}}}
    doc["components"]["securitySchemes"] = {"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "Cognito ID token on AWS; locally a token from `smartiot api token`"}}
    doc["security"] = [{"bearer": []}]
    for path in PUBLIC_PATHS:
        for op in doc.get("paths", {}).get(path, {}).values():
            op["security"] = []  # the password or the refresh token is the credential
    envelope_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    for ops in doc.get("paths", {}).values():
        for op in ops.values():
            answers = op.setdefault("responses", {})
            answers.pop("422", None)
            answers["200"] = {"description": "Success", "content": envelope_ref}
            for status, text in _ERROR_ANSWERS.items():
                answers[status] = {"description": text, "content": error_ref}
    return json.dumps(doc, indent=1)


def make_handler(services: Callable[[], ApiServices], *,
                 rate_limit: RateLimit | None = None,
                 sign_in: Callable[[], SignInService | None] | None = None
                 ) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A Lambda handler over ``services``: checks the body's size, sets the
    correlation id for every log line of the request, and resolves the route."""
    app = build_app(services, rate_limit=rate_limit, sign_in=sign_in)

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
        result = app.resolve(event, context)
        headers = result.setdefault("multiValueHeaders", {})
        headers["X-Correlation-Id"] = [request_id]
        return result

    handler.app = app  # type: ignore[attr-defined]
    return handler
