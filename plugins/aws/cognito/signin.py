"""Signing a person in to the stage's Cognito user pool, for the console's
sign-in dialog and ``smartiot login``.

SRP (Secure Remote Password, Cognito's ``USER_SRP_AUTH``): the password
never leaves the machine; the client proves it knows it. The SRP arithmetic
is pycognito's (``AWSSRP``), not ours; this module runs the conversation
around it so every challenge comes back to the caller as a value instead of
an exception or a prompt:

    signin = CognitoSignIn(CognitoPool.from_settings(settings))
    result = signin.sign_in("ada", password)
    if isinstance(result, NewPasswordRequired):      # first sign-in of a new person
        result = signin.set_new_password(result, new_password)
    if isinstance(result, CodeRequired):             # MFA: a TOTP app's or an SMS code
        result = signin.answer_code(result, code)
    tokens = result                                  # Tokens: id, access, refresh
    tokens = signin.refresh(tokens)                  # before ``tokens.expires_at``
    signin.sign_out(tokens)                          # this sign-in (RevokeToken)

Every failure a person can act on is a core error type with a message that
says what to do: a wrong password or an unknown user (``SignInFailed``
subclasses; the deployed pool answers both alike, on purpose), a disabled
account, a wrong or late MFA code, a new password the pool's policy refuses
(``ValidationError``), a sign-in that ended (refresh refused), too many
attempts (``TooManyAttempts``) and no connection to Cognito
(``IdentityProviderUnreachable``).

The public Cognito calls need no AWS credentials, so requests go unsigned.
Tokens are secrets: their ``repr`` hides them; keep the refresh token in the
keyring and the others in memory only.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore import UNSIGNED
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
from pycognito.aws_srp import AWSSRP  # type: ignore[import-untyped]

from core.errors import ConfigError, ServiceUnreachable, SmartIotError, ValidationError
from core.model.roles import Role
from core.services.accounts import SignInFailed, TooManyAttempts
from plugins.aws.cognito.directory import strongest_role
from plugins.aws.cognito.pool import ORGANIZATION_ATTRIBUTE
from plugins.aws.settings import AwsSettings

_CONFIG = BotoConfig(signature_version=UNSIGNED, connect_timeout=5, read_timeout=15,
                     retries={"mode": "standard", "max_attempts": 3})
# Cognito's challenge for each kind of code, and back.
MfaKind = Literal["totp", "sms"]
_CHALLENGE: dict[MfaKind, str] = {"totp": "SOFTWARE_TOKEN_MFA", "sms": "SMS_MFA"}
_KIND: dict[str, MfaKind] = {v: k for k, v in _CHALLENGE.items()}


# ---------------------------------------------------------------- errors
class WrongPassword(SignInFailed):
    """The user name and password do not match."""


class UnknownUser(SignInFailed):
    """No such person in the pool (only where the pool reveals it: moto; a
    deployed pool answers as for a wrong password)."""


class AccountDisabled(SignInFailed):
    """An admin disabled the account."""


class PasswordResetRequired(SignInFailed):
    """An admin reset the password; the person must set a new one."""


class WrongCode(SignInFailed):
    """The MFA code is wrong or too old."""


class ChallengeExpired(SignInFailed):
    """The sign-in waited too long between steps (Cognito keeps a challenge
    for 3 minutes): start again."""


class SessionEnded(SignInFailed):
    """The refresh token no longer works (signed out, disabled, expired)."""


class PasswordRejected(ValidationError):
    """The new password does not meet the pool's password policy."""


class IdentityProviderUnreachable(ServiceUnreachable):
    """Cognito could not be reached: the network, a proxy, or the endpoint.
    A ServiceUnreachable, so the console treats it as it treats its API not
    answering: cached pages, queued changes, and another try later."""


# ---------------------------------------------------------------- values
@dataclass(frozen=True, slots=True)
class CognitoPool:
    """Where people sign in: a user pool and the console's app client."""

    region: str
    user_pool_id: str
    client_id: str
    endpoint_url: str = ""  # moto or the sandbox; empty for Cognito itself

    def __post_init__(self) -> None:
        if not self.user_pool_id or not self.client_id:
            raise ConfigError("signing in on AWS needs the profile's user_pool_id and "
                              "user_pool_client_id (the stack's outputs, or the sandbox's)")

    @classmethod
    def from_settings(cls, settings: AwsSettings) -> CognitoPool:
        return cls(settings.region, settings.user_pool_id, settings.user_pool_client_id,
                   settings.endpoint_url)


@dataclass(frozen=True, slots=True)
class Tokens:
    """A signed-in person. ``role`` and ``organization`` are read from the ID
    token for the UI (what to grey out); the API checks them itself."""

    username: str
    groups: tuple[str, ...]
    organization: str
    expires_at: float  # epoch seconds; refresh before
    id_token: str = field(repr=False)
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)

    @property
    def role(self) -> Role | None:
        return strongest_role(list(self.groups))

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        return self.expires_at - (time.time() if now is None else now) <= seconds


@dataclass(frozen=True, slots=True)
class NewPasswordRequired:
    """First sign-in with a temporary password: answer with
    :meth:`CognitoSignIn.set_new_password`."""

    username: str
    session: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class CodeRequired:
    """A second factor is needed: a code from the person's authenticator app
    (``kind == "totp"``) or sent by SMS to ``destination``; answer with
    :meth:`CognitoSignIn.answer_code`."""

    username: str
    kind: MfaKind
    destination: str
    session: str = field(repr=False)


SignInResult = Tokens | NewPasswordRequired | CodeRequired


# ---------------------------------------------------------------- the flow
class CognitoSignIn:
    """Sign-in, challenges, refresh and sign-out against one user pool.
    ``client``: a boto3 ``cognito-idp`` client (tests); by default an
    unsigned one for the pool's region and endpoint."""

    def __init__(self, pool: CognitoPool, client: Any = None) -> None:
        self.pool = pool
        if client is None:
            import boto3

            if not pool.endpoint_url:
                client = boto3.session.Session().client(
                    "cognito-idp", region_name=pool.region, config=_CONFIG)
            else:
                # moto (the sandbox) reads the region from the signature, and
                # answers unsigned GlobalSignOut from its default region only:
                # sign with dummy keys there (it takes any). Cognito gets none.
                client = boto3.session.Session(
                    aws_access_key_id="sandbox", aws_secret_access_key="sandbox").client(
                    "cognito-idp", region_name=pool.region, endpoint_url=pool.endpoint_url,
                    config=_CONFIG.merge(BotoConfig(signature_version="v4")))
                client.meta.events.register("choose-signer.cognito-idp", _sign_v4)
        self._client = client

    def sign_in(self, username: str, password: str) -> SignInResult:
        """Tokens, or the next challenge. The password is used for the SRP proof
        only and is not kept."""
        username = username.strip()
        if not username or not password:
            raise ValidationError("sign in: enter both the user name and the password")
        srp = AWSSRP(username, password, self.pool.user_pool_id, self.pool.client_id,
                     client=self._client)
        params = srp.get_auth_params()
        start = self._call("initiate_auth", username, AuthFlow="USER_SRP_AUTH",
                           AuthParameters=params, ClientId=self.pool.client_id)
        if start.get("ChallengeName") != "PASSWORD_VERIFIER":
            raise SignInFailed(f"the user pool asked for {start.get('ChallengeName')!r} "
                               "instead of the SRP password check; the app client must allow "
                               "ALLOW_USER_SRP_AUTH")
        proof = srp.process_challenge(start["ChallengeParameters"], params)
        reply = self._call("respond_to_auth_challenge", username,
                           ClientId=self.pool.client_id, ChallengeName="PASSWORD_VERIFIER",
                           ChallengeResponses=proof)
        return self._result(reply, username)

    def set_new_password(self, challenge: NewPasswordRequired, new_password: str
                         ) -> SignInResult:
        """Answer the first-sign-in challenge: the new password replaces the
        temporary one (PasswordRejected names the pool's rule it breaks)."""
        if not new_password:
            raise ValidationError("new password: enter the password you want to use")
        reply = self._call("respond_to_auth_challenge", challenge.username,
                           ClientId=self.pool.client_id, ChallengeName="NEW_PASSWORD_REQUIRED",
                           Session=challenge.session,
                           ChallengeResponses={"USERNAME": challenge.username,
                                               "NEW_PASSWORD": new_password})
        return self._result(reply, challenge.username)

    def answer_code(self, challenge: CodeRequired, code: str) -> SignInResult:
        """Answer an MFA challenge with the code the person typed."""
        code = code.strip().replace(" ", "")
        if not code.isdigit():
            raise ValidationError(f"code: {code!r} is not the 6-digit code from your "
                                  f"{'authenticator app' if challenge.kind == 'totp' else 'SMS'}")
        name = _CHALLENGE[challenge.kind]
        reply = self._call("respond_to_auth_challenge", challenge.username,
                           ClientId=self.pool.client_id, ChallengeName=name,
                           Session=challenge.session,
                           ChallengeResponses={"USERNAME": challenge.username,
                                               f"{name}_CODE": code})
        return self._result(reply, challenge.username)

    def refresh(self, tokens: Tokens | str) -> Tokens:
        """New ID and access tokens for a refresh token (or the Tokens holding
        it); the refresh token itself stays the same. SessionEnded when it no
        longer works: sign in again."""
        refresh_token = tokens.refresh_token if isinstance(tokens, Tokens) else tokens
        who = tokens.username if isinstance(tokens, Tokens) else ""
        reply = self._call("initiate_auth", who, AuthFlow="REFRESH_TOKEN_AUTH",
                           AuthParameters={"REFRESH_TOKEN": refresh_token},
                           ClientId=self.pool.client_id, refreshing=True)
        result = reply.get("AuthenticationResult")
        if not result:
            raise SessionEnded("the user pool did not renew the sign-in; sign in again")
        return _tokens(result, refresh_token)

    def sign_out(self, tokens: Tokens, *, everywhere: bool = False) -> None:
        """End this sign-in: its refresh token is revoked (RevokeToken) and the
        access and ID tokens it issued stop working at Cognito. ``everywhere``
        also ends the person's sign-ins on every other machine (GlobalSignOut).
        Forget the tokens locally whatever happens."""
        if everywhere:
            self._call("global_sign_out", tokens.username, AccessToken=tokens.access_token,
                       refreshing=True)
        else:
            self._call("revoke_token", tokens.username, Token=tokens.refresh_token,
                       ClientId=self.pool.client_id, refreshing=True)

    # ------------------------------------------------------------ internals
    def _result(self, reply: dict[str, Any], username: str) -> SignInResult:
        result = reply.get("AuthenticationResult")
        if result:
            return _tokens(result, result.get("RefreshToken", ""))
        challenge = str(reply.get("ChallengeName") or "")
        params = reply.get("ChallengeParameters") or {}
        who = str(params.get("USERNAME") or username)
        session = str(reply.get("Session") or "")
        if challenge == "NEW_PASSWORD_REQUIRED":
            return NewPasswordRequired(who, session)
        if challenge in _KIND:
            return CodeRequired(who, _KIND[challenge],
                                str(params.get("CODE_DELIVERY_DESTINATION") or ""), session)
        if challenge == "MFA_SETUP":
            raise SignInFailed("the user pool requires a second factor that is not set up "
                               "for this account yet; ask an admin, or set up an "
                               "authenticator app where the pool offers it")
        raise SignInFailed(f"the user pool asked for the {challenge or 'unknown'} step, which "
                           "this console does not support")

    def _call(self, operation: str, username: str, *, refreshing: bool = False,
              **params: Any) -> dict[str, Any]:
        try:
            reply: dict[str, Any] = getattr(self._client, operation)(**params)
            return reply
        except ClientError as exc:
            raise _error(exc, username, refreshing) from None
        except (ConnectionError, HTTPClientError) as exc:
            where = self.pool.endpoint_url or f"Cognito in {self.pool.region}"
            raise IdentityProviderUnreachable(
                f"could not reach {where} to sign in ({exc}); check the network "
                "connection and try again") from None


def _sign_v4(**_: Any) -> str:
    """botocore leaves Cognito's public calls unsigned; sign them anyway."""
    return "v4"


def _error(exc: ClientError, username: str, refreshing: bool) -> SmartIotError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", ""))
    who = username or "this account"
    if code == "NotAuthorizedException":
        lowered = message.lower()
        if "disabled" in lowered:
            return AccountDisabled(f"the account {who} is disabled; an admin can enable it")
        if "attempts exceeded" in lowered:
            return TooManyAttempts(f"too many failed sign-ins for {who}; wait a few minutes "
                                   "and try again", 300)
        if "session" in lowered:
            return ChallengeExpired("the sign-in took too long between steps; start again")
        if refreshing or "token" in lowered:
            return SessionEnded(f"the sign-in of {who} has ended (signed out, expired or "
                                "revoked); sign in again")
        return WrongPassword("wrong user name or password")
    if code == "UserNotFoundException":
        return UnknownUser(f"there is no user {who} in this user pool; check the name")
    if code == "UserNotConfirmedException":
        return SignInFailed(f"the account {who} is not confirmed yet; ask an admin")
    if code == "PasswordResetRequiredException":
        return PasswordResetRequired(f"the password of {who} was reset; set a new one with "
                                     "the code you were sent, or ask an admin")
    if code in ("CodeMismatchException", "ExpiredCodeException"):
        return WrongCode("the code is wrong or has expired; enter the current code")
    if code == "InvalidPasswordException":
        return PasswordRejected(f"new password: {message or 'refused by the password policy'}")
    if code in ("TooManyRequestsException", "LimitExceededException",
                "TooManyFailedAttemptsException"):
        return TooManyAttempts("too many sign-in requests; wait a minute and try again", 60)
    if code == "ResourceNotFoundException":
        return SignInFailed(f"the user pool or app client named by the profile does not "
                            f"exist ({message}); check user_pool_id and user_pool_client_id")
    return SignInFailed(f"the user pool refused the sign-in: {code} {message}".strip())


def _tokens(result: dict[str, Any], refresh_token: str) -> Tokens:
    id_token = str(result["IdToken"])
    claims = _unverified_claims(id_token)
    groups = claims.get("cognito:groups") or []
    if isinstance(groups, str):
        groups = [g for g in groups.strip("[]").replace(",", " ").split() if g]
    return Tokens(
        username=str(claims.get("cognito:username") or claims.get("sub") or ""),
        groups=tuple(str(g) for g in groups),
        organization=str(claims.get(ORGANIZATION_ATTRIBUTE) or ""),
        expires_at=time.time() + float(result.get("ExpiresIn") or 3600),
        id_token=id_token, access_token=str(result["AccessToken"]),
        refresh_token=refresh_token)


def _unverified_claims(token: str) -> dict[str, Any]:
    """The ID token's payload, for display only: the token came straight from
    Cognito over TLS, and the API verifies it on every request."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        raise SignInFailed("the user pool answered with an unreadable ID token") from None
    return data if isinstance(data, dict) else {}
