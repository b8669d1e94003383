"""The console's REST API session (core.ports.remote_api.RemoteSession):
sign-in, refresh and sign-out through plugins/api/routes/auth.py, and the
HttpFleetApi the pages call.

A bearer token can also be handed over as the secret ``api.token``
(``SMARTIOT_SECRET_API_TOKEN`` or ``smartiot secrets set api.token``), e.g. one
from ``smartiot api token`` for a script: it is used as is, never refreshed.
"""

from __future__ import annotations

from core import secrets
from core.context import AppContext
from core.errors import SmartIotError
from core.model.roles import Actor, Role
from core.ports.broker_accounts import BrokerLogin
from core.ports.fleet_api import FleetApi
from plugins.api.client.fleet import HttpFleetApi
from plugins.api.client.tokens import TokenSession
from plugins.api.client.transport import StaticToken, TokenSource

STATIC_TOKEN_SECRET = "api.token"


class ApiSession:
    def __init__(self, base_url: str, *, timeout_s: float = 15.0) -> None:
        self.tokens = TokenSession(base_url, timeout_s=timeout_s)
        self._static = _static_token()
        source: TokenSource = StaticToken(self._static) if self._static else self.tokens
        self.api = HttpFleetApi(base_url, source, timeout_s=timeout_s)
        self._actor: Actor | None = None

    @property
    def base_url(self) -> str:
        return self.tokens.base_url

    @property
    def username(self) -> str:
        return self.tokens.username

    @property
    def actor(self) -> Actor | None:
        return self._actor

    def resume(self) -> bool:
        if self._static:
            self._actor = self.api.actor
            return True
        # A new broker login too: the one from the last start was rotated or dropped.
        if not self.tokens.has_refresh_token() or not self.tokens.renew(broker=True):
            return False
        self._actor = self._from_answer() or self.api.actor
        self.api.__dict__["actor"] = self._actor
        return True

    def sign_in(self, username: str, password: str) -> Actor:
        self.tokens.sign_in(username, password)
        self._actor = self._from_answer() or self.api.actor
        self.api.__dict__["actor"] = self._actor  # the person may have changed
        return self._actor

    def sign_out(self) -> None:
        self.tokens.sign_out()
        self._actor = None
        self.api.__dict__.pop("actor", None)

    def broker_login(self) -> BrokerLogin | None:
        return self.tokens.broker

    def fleet_api(self) -> FleetApi:
        return self.api

    def _from_answer(self) -> Actor | None:
        """The actor the server sent with the tokens (docs/api.md, "Signing in")."""
        data = self.tokens.actor
        try:
            return Actor(str(data["user"]), Role(data["role"]),
                         str(data.get("organization") or ""))
        except (KeyError, ValueError):
            return None


def _static_token() -> str:
    try:
        return secrets.get_secret(STATIC_TOKEN_SECRET) or ""
    except SmartIotError:
        return ""


def connect(context: AppContext) -> ApiSession:
    return ApiSession(context.config.profile.api_url)
