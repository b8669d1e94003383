"""What API Gateway's Cognito authorizer does, done locally for the sandbox.

On AWS, API Gateway checks the caller's ID token against the user pool before
the Lambda runs and hands the Lambda its claims as
``requestContext.authorizer.claims``. The sandbox serves the same Lambda
handler on a port (plugins/aws/api_server.py) and needs the same gate, so this
module checks the same things:

- the signature, against the pool's public keys (its JWKS, which moto serves
  at ``{endpoint}/{pool_id}/.well-known/jwks.json`` as Cognito does at
  ``https://cognito-idp.{region}.amazonaws.com/{pool_id}/.well-known/jwks.json``),
  RS256 only;
- the issuer (``https://cognito-idp.{region}.amazonaws.com/{pool_id}``, also on
  moto), the audience (the console's app client) and the expiry;
- ``token_use`` is ``id``: an access token carries no ``custom:organization``,
  so accepting one would let an organization's person act as if they had no
  organization, i.e. over the whole fleet. API Gateway's Cognito authorizer
  likewise takes ID tokens unless OAuth scopes are configured.

The claims are passed on as API Gateway's REST API passes them: every value a
string (a list such as ``cognito:groups`` comma-joined), which
plugins/api/auth.py's ``actor_from_claims`` reads.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import jwt

from core.errors import ConfigError
from plugins.api.auth import Unauthorized
from plugins.aws.settings import AwsSettings

# A token that names a key the cached set does not hold makes us fetch the set
# again (Cognito rotates keys), but at most this often, so garbage tokens
# cannot turn the server into a JWKS download loop.
JWKS_REFETCH_S = 60.0
LEEWAY_S = 0  # API Gateway allows none either


def issuer(region: str, user_pool_id: str) -> str:
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


def jwks_url(settings: AwsSettings) -> str:
    base = settings.endpoint_url.rstrip("/") if settings.endpoint_url \
        else f"https://cognito-idp.{settings.region}.amazonaws.com"
    return f"{base}/{settings.user_pool_id}/.well-known/jwks.json"


class CognitoAuthorizer:
    """Verifies a user pool's ID tokens: ``verify(token) -> claims`` or
    Unauthorized saying what is wrong (the shape plugins/api/wsgi.py calls)."""

    def __init__(self, region: str, user_pool_id: str, client_id: str, jwks_url: str, *,
                 timeout_s: float = 5.0) -> None:
        if not user_pool_id or not client_id:
            raise ConfigError("the Cognito authorizer needs the user pool id and the app "
                              "client id (user_pool_id, user_pool_client_id)")
        self.issuer = issuer(region, user_pool_id)
        self.client_id = client_id
        self.jwks_url = jwks_url
        self._timeout_s = timeout_s
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: AwsSettings) -> CognitoAuthorizer:
        return cls(settings.region, settings.user_pool_id, settings.user_pool_client_id,
                   jwks_url(settings))

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid ID token of this pool and client, as strings."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("the bearer token is not a JSON Web Token") from None
        if header.get("alg") != "RS256":
            raise Unauthorized(f"the bearer token is signed with {header.get('alg')!r}; "
                               "Cognito signs with RS256")
        key = self._key(str(header.get("kid") or ""))
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=["RS256"], audience=self.client_id,
                issuer=self.issuer, leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "iss", "aud", "token_use"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired; refresh it or sign in again") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("the token was issued to another app client") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("the token was issued by another user pool") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("the token's signature does not match the user pool's "
                               "keys") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the token is not valid: {exc}") from None
        if claims.get("token_use") != "id":
            raise Unauthorized(f"send the ID token, not the {claims.get('token_use')} token")
        return {name: _as_api_gateway(value) for name, value in claims.items()}

    def _key(self, kid: str) -> Any:
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at > JWKS_REFETCH_S:
                self._keys = self._fetch()
                self._fetched_at = time.monotonic()
            found = self._keys.get(kid)
        if found is None:
            raise Unauthorized("the token names a signing key the user pool does not have")
        return found

    def _fetch(self) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(self.jwks_url, timeout=self._timeout_s) as reply:
                data = json.load(reply)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            # Without the keys nothing can be checked: refuse, never let through.
            raise Unauthorized(f"the user pool's keys could not be read from "
                               f"{self.jwks_url} ({exc}); try again") from None
        keys = {}
        for item in data.get("keys") or []:
            try:
                keys[str(item.get("kid"))] = jwt.PyJWK(item).key
            except jwt.PyJWTError:
                continue
        return keys


def _as_api_gateway(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)
