"""Temporary AWS credentials for the console's live link, from the stage's
Cognito identity pool.

GetId and then GetCredentialsForIdentity, each with the user pool's ID token
as the login (``cognito-idp.<region>.amazonaws.com/<user pool id>``): the
identity pool checks the token and hands out keys of its authenticated role
(serverless.yml's ``ConsoleRole``: connect as the identity, subscribe to and
receive the person's organization's live topics, nothing else). Both calls
are public, so they go unsigned; the console holds no AWS keys of its own.
The keys expire (an hour on AWS, 90 s on moto); the feed asks again before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore import UNSIGNED
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from core.errors import SmartIotError
from core.services.accounts import SignInFailed
from plugins.aws.live.presign import TemporaryCredentials

log = logging.getLogger(__name__)

_CONFIG = BotoConfig(signature_version=UNSIGNED, connect_timeout=5, read_timeout=10,
                     retries={"mode": "standard", "max_attempts": 2})
# Answers that mean the login itself is refused: only signing in again helps.
REFUSED = frozenset({"NotAuthorizedException", "ResourceNotFoundException"})


class SignInNeeded(SmartIotError):
    """Nobody is signed in, or the identity pool refused the sign-in's token."""


class CredentialsUnavailable(SmartIotError):
    """The identity pool could not be asked now (network, throttling): try again later."""


def login_provider(region: str, user_pool_id: str) -> str:
    return f"cognito-idp.{region}.amazonaws.com/{user_pool_id}"


class IdentityPoolCredentials:
    """``id_token()`` returns the person's current ID token (renewed when due)
    or raises core.services.accounts.SignInFailed when nobody is signed in."""

    def __init__(self, identity_pool_id: str, region: str, user_pool_id: str,
                 id_token: Callable[[], str], *, endpoint_url: str = "",
                 client: Any = None) -> None:
        if not identity_pool_id:
            raise SignInNeeded("the stage has no identity pool for live data: set "
                               "identity_pool_id in the profile (the stack's IdentityPoolId)")
        self.identity_pool_id = identity_pool_id
        self.region = region
        self.provider = login_provider(region, user_pool_id)
        self._id_token = id_token
        self._client = client
        self._endpoint_url = endpoint_url
        self._identity: tuple[str, str] | None = None  # (the token's user, identity id)
        self._lock = threading.Lock()
        self.fetched = 0

    def _cognito(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.session.Session().client(
                "cognito-identity", region_name=self.region,
                endpoint_url=self._endpoint_url or None, config=_CONFIG)
        return self._client

    def get(self) -> TemporaryCredentials:
        """Fresh credentials; SignInNeeded or CredentialsUnavailable saying why not."""
        try:
            token = self._id_token()
        except SignInFailed as exc:
            raise SignInNeeded(str(exc)) from None
        logins = {self.provider: token}
        with self._lock:
            try:
                identity_id = self._identity_id(logins, token)
                answer = self._cognito().get_credentials_for_identity(
                    IdentityId=identity_id, Logins=logins)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                message = exc.response.get("Error", {}).get("Message", "")
                self._identity = None
                if code in REFUSED:
                    raise SignInNeeded(f"the identity pool {self.identity_pool_id} refused "
                                       f"the sign-in ({code}: {message}); sign in again"
                                       ) from None
                raise CredentialsUnavailable(f"the identity pool {self.identity_pool_id} "
                                             f"answered {code}: {message}") from None
            except BotoCoreError as exc:
                raise CredentialsUnavailable(f"could not reach the identity pool "
                                             f"{self.identity_pool_id}: {exc}") from None
        c = answer["Credentials"]
        expiration = c["Expiration"]
        expires_at = (expiration.timestamp() if isinstance(expiration, datetime)
                      else float(expiration))
        self.fetched += 1
        return TemporaryCredentials(c["AccessKeyId"], c["SecretKey"], c["SessionToken"],
                                    expires_at, identity_id)

    def _identity_id(self, logins: dict[str, str], token: str) -> str:
        """The person's identity (the MQTT client id the IoT policy allows),
        asked once per signed-in user."""
        user = _token_user(token)
        if self._identity is not None and self._identity[0] == user:
            return self._identity[1]
        identity_id = str(self._cognito().get_id(IdentityPoolId=self.identity_pool_id,
                                                 Logins=logins)["IdentityId"])
        self._identity = (user, identity_id)
        return identity_id


def _token_user(token: str) -> str:
    """The JWT's subject, unverified (only to notice another person signed in)."""
    import base64
    import json

    try:
        body = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return str(claims.get("sub") or claims.get("cognito:username") or "")
    except (IndexError, ValueError):
        return ""
