"""Temporary AWS credentials for the console's live link, from the stage's
Cognito identity pool.

GetId and then GetCredentialsForIdentity, each with the user pool's ID token
as the login (``cognito-idp.<region>.amazonaws.com/<user pool id>``): the
identity pool checks the token and hands out keys of its authenticated role
(serverless.yml's ``ConsoleRole``: connect as the identity, subscribe to and
receive the person's organization's live topics, nothing else). Both calls
are public, so they go unsigned; the console holds no AWS keys of its own.
The keys expire (an hour on AWS, 90 s on moto); the feed asks again before.

Which identity: the API's ``POST /me/iot-access`` answers it (and attaches
the stage's IoT policy to it, without which IoT Core refuses the connection:
plugins/aws/iot_access.py), once per signed-in person; an API without that
route (a stack deployed before it) leaves the console to GetId itself.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore import UNSIGNED
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from core.errors import ServiceUnreachable, SmartIotError
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
                 client: Any = None, access: IotAccessRoute | None = None) -> None:
        if not identity_pool_id:
            raise SignInNeeded("the stage has no identity pool for live data: set "
                               "identity_pool_id in the profile (the stack's IdentityPoolId)")
        self.identity_pool_id = identity_pool_id
        self.region = region
        self.provider = login_provider(region, user_pool_id)
        self._id_token = id_token
        self._client = client
        self._endpoint_url = endpoint_url
        self._access = access
        self._identity: tuple[str, str] | None = None  # (the token's user, identity id)
        self._lock = threading.Lock()
        self.fetched = 0

    @property
    def identity_id(self) -> str:
        """The signed-in person's identity ("" before the first credentials)."""
        identity = self._identity
        return identity[1] if identity is not None else ""

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
        except ServiceUnreachable as exc:  # Cognito cannot renew the sign-in now: offline
            raise CredentialsUnavailable(str(exc)) from None
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
        asked once per signed-in user: the API's answer, which also attaches
        the IoT policy to it; GetId only where the API has no such route."""
        user = _token_user(token)
        if self._identity is not None and self._identity[0] == user:
            return self._identity[1]
        identity_id = self._access.identity(token) if self._access is not None else None
        if identity_id is None:
            identity_id = str(self._cognito().get_id(IdentityPoolId=self.identity_pool_id,
                                                     Logins=logins)["IdentityId"])
        self._identity = (user, identity_id)
        return identity_id


class IotAccessRoute:
    """The API's ``POST /me/iot-access`` (plugins/aws/iot_access.py), called
    with the person's ID token: their identity id, with the stage's IoT
    policy attached to it. Its own small HTTP call, not the pages' client:
    this is no person's action to queue in the outbox, and the feed's thread
    needs the answer or a reason to back off."""

    def __init__(self, api_url: str, timeout_s: float = 15.0) -> None:
        self.url = api_url.rstrip("/") + "/me/iot-access"
        self.timeout_s = timeout_s
        self.calls = 0
        self.missing = False  # the API has no such route (a stack older than it)

    def identity(self, id_token: str) -> str | None:
        """The identity id, or None when the API has no such route (GetId
        then, and IoT Core refuses the link unless an administrator attached
        the policy: logged)."""
        if self.missing:
            return None
        request = urllib.request.Request(self.url, data=b"{}", method="POST", headers={
            "Content-Type": "application/json", "Accept": "application/json",
            "Authorization": f"Bearer {id_token}"})
        self.calls += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                body = json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as exc:
            with exc:
                message = _error_message(exc.read()) or exc.reason
            if exc.code == 404:
                self.missing = True
                log.warning("live data: %s answered 404 (%s); the console's Cognito identity "
                            "gets no IoT policy from it, so IoT Core refuses the link unless "
                            "an administrator attached iot-console-<stage> to it", self.url,
                            message)
                return None
            if exc.code in (401, 403):
                raise SignInNeeded(f"the API refused live data for this sign-in "
                                   f"(HTTP {exc.code}: {message}); sign in again") from None
            raise CredentialsUnavailable(f"{self.url} answered HTTP {exc.code}: {message}"
                                         ) from None
        except (OSError, ValueError) as exc:  # URLError, timeouts, a garbled answer
            reason = getattr(exc, "reason", exc)
            raise CredentialsUnavailable(f"could not reach {self.url}: {reason}") from None
        identity_id = str(((body or {}).get("data") or {}).get("identity_id") or "")
        if not identity_id:
            raise CredentialsUnavailable(f"{self.url} answered without an identity id")
        return identity_id


def _error_message(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return raw[:200].decode("utf-8", "replace")


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
