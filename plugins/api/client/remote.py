"""The console's REST API session (core.ports.remote_api.RemoteSession):
sign-in, refresh and sign-out through plugins/api/routes/auth.py, and the
HttpFleetApi the pages call.

A bearer token can also be handed over as the secret ``api.token``
(``SMARTIOT_SECRET_API_TOKEN`` or ``smartiot secrets set api.token``), e.g. one
from ``smartiot api token`` for a script: it is used as is, never refreshed.

With a data directory the session keeps the person's work safe on a bad
connection (docs/api.md, "Working offline"): changes go through the outbox
(``<data dir>/offline/outbox.sqlite3``) and reads are cached
(``<data dir>/offline/cache.sqlite3``); a console started without a connection
resumes the last person's sign-in from the cache, showing cached pages, and
its queued changes leave as soon as the server answers.
"""

from __future__ import annotations

from pathlib import Path

from core import secrets
from core.context import AppContext
from core.errors import SmartIotError
from core.model.roles import Actor, Role
from core.ports.broker_accounts import BrokerLogin
from core.ports.fleet_api import FleetApi
from core.ports.identity_provider import DemoLogin, SignInChallenge
from core.ports.offline import OfflineWork
from plugins.api.client.cache import OfflineCache
from plugins.api.client.errors import HubUnreachable, SignInRequired
from plugins.api.client.fleet import HttpFleetApi
from plugins.api.client.outbox import Outbox
from plugins.api.client.tokens import TokenSession
from plugins.api.client.transport import StaticToken, TokenSource

STATIC_TOKEN_SECRET = "api.token"


class ApiSession:
    def __init__(self, base_url: str, *, timeout_s: float = 15.0,
                 data_dir: Path | None = None) -> None:
        self.tokens = TokenSession(base_url, timeout_s=timeout_s)
        self._static = _static_token()
        source: TokenSource = StaticToken(self._static) if self._static else self.tokens
        self.api = HttpFleetApi(base_url, source, timeout_s=timeout_s)
        self._actor: Actor | None = None
        self.cache: OfflineCache | None = None
        self.outbox: Outbox | None = None
        if data_dir is not None:
            folder = data_dir / "offline"
            self.cache = OfflineCache(folder / "cache.sqlite3", self._user)
            self.outbox = Outbox(folder / "outbox.sqlite3", self.api.http, self._user,
                                 cache=self.cache)
            self.api.http.cache = self.cache
            self.api.http.outbox = self.outbox

    def _user(self) -> str:
        """Whom the outbox and the cache file things under: the signed-in person."""
        if self._static:
            return self._actor.user if self._actor is not None else ""
        return self.tokens.username or (self._actor.user if self._actor is not None else "")

    def offline_work(self) -> OfflineWork | None:
        """The outbox (starting its sender): what the status bar shows."""
        if self.outbox is not None:
            self.outbox.start()
        return self.outbox

    def close(self) -> None:
        if self.outbox is not None:
            self.outbox.close()
        if self.cache is not None:
            self.cache.close()

    def _ready(self, actor: Actor) -> Actor:
        self._actor = actor
        self.api.__dict__["actor"] = actor  # the person may have changed
        if self.cache is not None:
            self.cache.remember_actor(self.base_url, {
                "user": actor.user, "role": actor.role.value,
                "organization": actor.organization})
        if self.outbox is not None:
            self.outbox.after_sign_in()
            self.outbox.start()
        return actor

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
            self._ready(self.api.actor)
            return True
        if not self.tokens.has_refresh_token():
            return False
        try:
            # A new broker login too: the one from the last start was rotated or dropped.
            if not self.tokens.renew(broker=True):
                return False
        except HubUnreachable:
            # Offline: the last person's cached pages and queued work, until the
            # server answers (the outbox renews the token then).
            if not self._resume_offline():
                raise
            return True
        self._ready(self._from_answer() or self.api.actor)
        return True

    def _resume_offline(self) -> bool:
        """The last person signed in here, from the cache, with their cached
        pages and queued work; False when nobody is known."""
        last = self.cache.last_actor(self.base_url) if self.cache is not None else None
        if last is None:
            return False
        self._actor = Actor(str(last["user"]), Role(last["role"]),
                            str(last.get("organization") or ""))
        self.api.__dict__["actor"] = self._actor
        assert self.cache is not None
        self.cache.went_offline(None)
        if self.outbox is not None:
            self.outbox.start()
        return True

    def sign_in(self, username: str, password: str) -> Actor | SignInChallenge:
        self.tokens.sign_in(username, password)
        return self._ready(self._from_answer() or self.api.actor)

    def sign_out(self) -> None:
        self.tokens.sign_out()
        self._actor = None
        self.api.__dict__.pop("actor", None)

    def answer_challenge(self, challenge: SignInChallenge, response: str
                         ) -> Actor | SignInChallenge:
        """The hub's sign-in has no second step (identity_session.py's has)."""
        raise SignInRequired(f"{self.base_url} asks for no {challenge.kind} step; sign in again")

    def demo_logins(self) -> list[DemoLogin]:
        return []

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
    return ApiSession(context.config.profile.api_url, data_dir=context.config.data_dir)
