"""Who the HTTP client acts for: a short-lived access token kept in memory and
a refresh token kept in the project's secrets store (the OS keyring or the
encrypted file, core.secrets), never in the config file or a log.

Signing in sends the username and password to ``POST /auth/login`` once;
afterwards ``POST /auth/refresh`` trades the refresh token for a new access
token shortly before the old one expires (or when the server refuses it),
so a console left open all day keeps working without asking again.
Signing out tells the server (``POST /auth/logout``) and forgets both.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from core import secrets
from core.errors import SmartIotError
from core.ports.broker_accounts import BrokerLogin
from plugins.api.client.errors import SignInRequired
from plugins.api.client.transport import HttpTransport, normalise_url

REFRESH_MARGIN_S = 60.0  # renew this long before the access token expires
DEFAULT_LIFETIME_S = 900.0  # when the server does not say


def refresh_secret_name(base_url: str) -> str:
    """One refresh token per server: ``api.refresh:hub:8080``."""
    parts = urlsplit(normalise_url(base_url))
    return f"api.refresh:{parts.netloc}{parts.path}"


class TokenSession:
    """The TokenSource of an HttpTransport after a real sign-in."""

    def __init__(self, base_url: str, *, clock: Callable[[], float] = time.time,
                 timeout_s: float = 15.0) -> None:
        self.base_url = normalise_url(base_url)
        self.secret_name = refresh_secret_name(self.base_url)
        self._clock = clock
        # Its own transport, without tokens: /auth routes take none.
        self._auth = HttpTransport(self.base_url, None, timeout_s=timeout_s)
        self._access = ""
        self._expires = 0.0
        self._lock = threading.Lock()
        # One refresh at a time: the server rotates refresh tokens and treats a
        # used one presented again as stolen (it revokes the whole sign-in).
        self._renewing = threading.Lock()
        self.username = ""
        #: who the server said this is, at the last sign-in or refresh
        self.actor: dict[str, Any] = {}
        #: the person's own broker login, when the server hands one out
        self.broker: BrokerLogin | None = None

    # ------------------------------------------------------------ state
    def has_refresh_token(self) -> bool:
        try:
            return bool(secrets.get_secret(self.secret_name))
        except SmartIotError:
            return False

    def _fresh(self) -> str:
        with self._lock:
            if self._access and self._clock() < self._expires - REFRESH_MARGIN_S:
                return self._access
            return ""

    def access_token(self) -> str:
        token = self._fresh()
        if token:
            return token
        with self._renewing:
            token = self._fresh()  # another thread may have renewed meanwhile
            if token:
                return token
            if not self._renew_locked():
                raise SignInRequired(f"sign in to {self.base_url} to continue")
            return self._access

    # ------------------------------------------------------------ server calls
    def sign_in(self, username: str, password: str) -> dict[str, Any]:
        """Who the server takes the person for (user, role, organization,
        permissions). Refused: SignInRequired (wrong name or password),
        PermissionDenied (disabled), SlowDown (too many tries), with the
        server's words; HubUnreachable when it does not answer."""
        try:
            answer = self._auth.call("POST", "/auth/login",
                                     body={"username": username, "password": password},
                                     authenticated=False)
        except SignInRequired as exc:
            raise SignInRequired(exc.server_message) from None
        self.username = username
        self._take(answer.data)
        return self.actor

    def renew(self, *, broker: bool = False) -> bool:
        """A new access token from the stored refresh token; False when there is
        none or the server no longer accepts it (the person signs in again).
        ``broker`` also asks for a new broker login (the old one stops working)."""
        with self._renewing:
            return self._renew_locked(broker=broker)

    def _renew_locked(self, *, broker: bool = False) -> bool:
        try:
            refresh = secrets.get_secret(self.secret_name)
        except SmartIotError:
            return False
        if not refresh:
            return False
        try:
            body: dict[str, Any] = {"refresh_token": refresh}
            if broker:
                body["broker"] = True
            answer = self._auth.call("POST", "/auth/refresh", body=body, authenticated=False)
        except SignInRequired:
            self._forget()
            return False
        self._take(answer.data)
        return True

    def sign_out(self) -> None:
        """Tell the server (best effort: offline, the token is still forgotten here)."""
        try:
            refresh = secrets.get_secret(self.secret_name)
        except SmartIotError:
            refresh = None
        if refresh:
            with contextlib.suppress(SmartIotError):
                self._auth.call("POST", "/auth/logout", body={"refresh_token": refresh},
                                authenticated=False)
        self._forget()

    # ------------------------------------------------------------ helpers
    def _take(self, data: Any) -> None:
        if not isinstance(data, dict) or not data.get("access_token"):
            raise SmartIotError(f"the hub at {self.base_url} answered the sign-in without "
                                "an access token")
        lifetime = float(data.get("expires_in") or DEFAULT_LIFETIME_S)
        with self._lock:
            self._access = str(data["access_token"])
            self._expires = self._clock() + lifetime
        login = data.get("broker")
        if isinstance(login, dict) and login.get("username"):
            self.broker = BrokerLogin(str(login["url"]), str(login["username"]),
                                      str(login.get("password") or ""),
                                      bool(login.get("can_command")))
        if isinstance(data.get("actor"), dict):
            self.actor = dict(data["actor"])
            self.username = str(self.actor.get("user") or self.username)
        if data.get("refresh_token"):
            secrets.set_secret(self.secret_name, str(data["refresh_token"]))

    def _forget(self) -> None:
        with self._lock:
            self._access = ""
            self._expires = 0.0
        self.broker = None
        with contextlib.suppress(SmartIotError):
            secrets.delete_secret(self.secret_name)
