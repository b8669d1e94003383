"""REST routes of signing in (the team set-up: ``smartiot hub`` serving the
API): ``/auth/login``, ``/auth/refresh``, ``/auth/logout`` need no bearer token
(the password or the refresh token is the credential); ``/auth/password``
needs one. The use cases are core.services.accounts: the role and
organization come from the user directory, refusals are generic and
throttled, everything is audited. On AWS, Cognito signs people in and these
routes answer 404.

JSON shapes (docs/api.md, "Signing in", is the reference for clients)::

    POST /auth/login    {"username", "password"}              -> Session
    POST /auth/refresh  {"refresh_token", "broker": false}    -> Session
    POST /auth/logout   {"refresh_token"}                     -> {"signed_out": bool}
    POST /auth/password {"current_password", "new_password"}  -> {"signed_out": int}
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from core.errors import NotFound
from core.model.roles import GRANTS, Actor
from core.services.accounts import SignIn, SignInService, TooManyAttempts
from plugins.api.responses import CORS_HEADERS, envelope

BEARER = "Bearer"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_Strict):
    username: str = Field(min_length=1, max_length=128)
    # repr=False: Powertools logs a handler's arguments at DEBUG; credentials stay out.
    password: str = Field(min_length=1, max_length=1024, repr=False)


class RefreshIn(_Strict):
    refresh_token: str = Field(min_length=1, max_length=256, repr=False)
    broker: bool = Field(default=False,
                         description="also hand out (rotate) the person's broker login")


class LogoutIn(_Strict):
    refresh_token: str = Field(min_length=1, max_length=256, repr=False)


class PasswordIn(_Strict):
    current_password: str = Field(min_length=1, max_length=1024, repr=False)
    new_password: str = Field(min_length=1, max_length=1024, repr=False)


def actor_json(actor: Actor) -> dict[str, Any]:
    return {"user": actor.user, "role": actor.role.value, "organization": actor.organization,
            "permissions": sorted(p.value for p in GRANTS[actor.role])}


def session_json(s: SignIn, now_expires_in: int) -> dict[str, Any]:
    broker = None if s.broker is None else {
        "url": s.broker.url, "username": s.broker.username, "password": s.broker.password,
        "can_command": s.broker.can_command}
    return {"access_token": s.access_token, "token_type": BEARER,
            "expires_in": now_expires_in,
            "access_expires_at": s.access_expires_at.isoformat(),
            "refresh_token": s.refresh_token,
            "refresh_expires_at": s.refresh_expires_at.isoformat(),
            "actor": actor_json(s.actor), "broker": broker}


def auth_router(sign_in: Callable[[], SignInService | None], actor: Callable[[], Actor],
                client: Callable[[], str]) -> Router:
    """``client`` names the caller's address (throttling, audit)."""
    router = Router()

    def service() -> SignInService:
        found = sign_in()
        if found is None:
            raise NotFound("this backend signs people in through its own identity provider "
                           "(Cognito on AWS), not /auth")
        return found

    def throttled(exc: TooManyAttempts) -> Response[Any]:
        body = json.dumps({"success": False, "error": {
            "code": "TOO_MANY_REQUESTS", "message": str(exc),
            "details": {"retry_after_s": exc.retry_after_s}}})
        return Response(429, "application/json", body,
                        headers={**CORS_HEADERS, "Retry-After": str(exc.retry_after_s)})

    def answer(s: SignIn) -> Response[Any]:
        expires_in = int(service().access_lifetime.total_seconds())
        return envelope(session_json(s, expires_in), headers={"Cache-Control": "no-store"})

    @router.post("/auth/login", summary="Sign in with one's own account", tags=["auth"])
    def login(body: Annotated[LoginIn, Body()]) -> Response[Any]:
        try:
            return answer(service().login(body.username, body.password, client=client()))
        except TooManyAttempts as exc:
            return throttled(exc)

    @router.post("/auth/refresh", summary="New tokens for a refresh token (it rotates)",
                 tags=["auth"])
    def refresh(body: Annotated[RefreshIn, Body()]) -> Response[Any]:
        return answer(service().refresh(body.refresh_token, client=client(),
                                        with_broker=body.broker))

    @router.post("/auth/logout", summary="Sign out: revoke the refresh token's sign-in",
                 tags=["auth"])
    def logout(body: Annotated[LogoutIn, Body()]) -> Response[Any]:
        return envelope({"signed_out": service().logout(body.refresh_token, client=client())})

    @router.post("/auth/password", summary="Change one's own password", tags=["auth"])
    def password(body: Annotated[PasswordIn, Body()]) -> Response[Any]:
        try:
            ended = service().change_own_password(actor(), body.current_password,
                                                  body.new_password, client=client())
        except TooManyAttempts as exc:
            return throttled(exc)
        return envelope({"signed_out": ended})

    return router
