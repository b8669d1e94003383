"""Who is calling: the authorizer's claims, and the local stand-in that issues them.

On AWS, API Gateway's Cognito authorizer verifies the caller's token and puts
its claims into ``requestContext.authorizer.claims``; the handlers read the
person, role and organization from there and nowhere else (never from the
body or a header). Locally, the WSGI adapter plays the authorizer: it checks a
bearer token signed with a key kept in the data directory and fills the same
claims. Such a token is a shared-secret stand-in until per-person accounts
arrive; whoever can read the key file can mint any role.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.errors import SmartIotError
from core.model.roles import Actor, Role

# Most privileged first: a member of several Cognito groups acts with the
# strongest, as Cognito's group precedence would give them.
_ROLE_ORDER = (Role.ADMIN, Role.ENGINEER, Role.SUPPORT, Role.TECHNICIAN)
MAX_TOKEN_HOURS = 24 * 30
# Answered without a bearer token: the document, and signing in (the password or
# the refresh token in the body is the credential).
PUBLIC_PATHS = frozenset({"/openapi.json", "/auth/login", "/auth/refresh", "/auth/logout"})


class Unauthorized(SmartIotError):
    """No identity, or one that does not check out (HTTP 401)."""


def actor_from_claims(claims: Mapping[str, Any] | None) -> Actor:
    """The Actor of a request from Cognito-style claims: ``sub`` /
    ``cognito:username``, ``cognito:groups`` (one known group is the role) and
    ``custom:organization``."""
    if not claims:
        raise Unauthorized("the request carries no verified identity")
    user = str(claims.get("cognito:username") or claims.get("sub") or "").strip()
    if not user:
        raise Unauthorized("the verified identity names no user")
    groups = claims.get("cognito:groups") or []
    if isinstance(groups, str):
        # API Gateway passes a list claim as "[a, b]" or "a,b" in REST proxy events.
        groups = [g.strip() for g in groups.strip("[]").replace(",", " ").split()]
    names = {str(g).strip().lower() for g in groups}
    role = next((r for r in _ROLE_ORDER if r.value in names), None)
    if role is None:
        raise Unauthorized(f"{user} belongs to no group that is a role "
                           f"({', '.join(r.value for r in Role)})")
    return Actor(user, role, str(claims.get("custom:organization") or "").strip())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """HMAC-SHA256 tokens ``<claims>.<mac>`` with an expiry, under one key file."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise SmartIotError("the API token key must be at least 32 bytes")
        self._key = key

    @classmethod
    def from_dir(cls, directory: Path) -> TokenSigner:
        """The key in ``directory/token.key``, made on first use, readable only by
        this OS user (whoever reads it can sign in as anyone)."""
        path = directory / "token.key"
        if not path.exists():
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
        return cls(path.read_bytes())

    def issue(self, user: str, role: Role, organization: str = "", *, hours: float = 12.0,
              now: float | None = None) -> str:
        if not user.strip():
            raise SmartIotError("a token needs a user name")
        if not 0 < hours <= MAX_TOKEN_HOURS:
            raise SmartIotError(f"token lifetime {hours} h must be above 0 and at most "
                                f"{MAX_TOKEN_HOURS} h")
        issued = time.time() if now is None else now
        claims = {"sub": user.strip(), "cognito:username": user.strip(),
                  "cognito:groups": [role.value], "custom:organization": organization,
                  "iat": int(issued), "exp": int(issued + hours * 3600)}
        body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{self._mac(body)}"

    def verify(self, token: str, *, now: float | None = None) -> dict[str, Any]:
        """The token's claims, or Unauthorized saying what is wrong with it."""
        body, _, mac = token.strip().partition(".")
        if not body or not mac or not hmac.compare_digest(mac, self._mac(body)):
            raise Unauthorized("the bearer token is not one this server signed")
        try:
            claims = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            raise Unauthorized("the bearer token is unreadable") from None
        if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
            raise Unauthorized("the bearer token carries no expiry")
        if claims["exp"] <= (time.time() if now is None else now):
            raise Unauthorized("the bearer token has expired; ask for a new one")
        claims.pop("iat", None)
        claims.pop("exp", None)
        return claims

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
