"""The console's Cognito sign-in as the REST API client's token source
(core.ports.identity_provider.IdentityProvider).

API Gateway's Cognito authorizer checks the ID token (it carries the groups
and the organization; an access token does not), so the bearer token the
HTTP client sends is the ID token. Where each token lives:

- the ID and access tokens: in this object's memory only, renewed from the
  refresh token shortly before they expire (on demand, before the call that
  needs them, so a console idle over lunch renews on its first click);
- the refresh token: in the secret store (core.secrets: the OS keyring, or
  the encrypted file on a headless machine), one per user pool and app
  client, so ``smartiot login`` in a terminal and the console share it and a
  restart resumes without the password.

Offline (Cognito cannot be reached: a laptop without a network) the tokens
cannot be renewed. A console started so with a stored refresh token opens on
its cached pages (plugins/api/client/identity_session.py) and this session
signs the person in by itself once Cognito answers again: a background retry
with jittered backoff (1 s doubling to 30 s), and every caller in between is
told at once that Cognito cannot be reached (no wait for a timeout per page
read). Whoever wants to know when that happens registers with
:meth:`CognitoSession.on_signed_in` (the live feed, the API session's outbox).
An ID token that is still valid keeps being used while a renewal fails for
want of a network.

The conversation itself (SRP, challenges, refresh, revocation) is
plugins/aws/cognito/signin.py's; this module only keeps its results.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from core import secrets
from core.errors import SignInExpired, SmartIotError
from core.model.roles import Actor
from core.ports.identity_provider import DemoLogin, SignInChallenge
from core.services.accounts import SignInFailed
from plugins.aws.cognito.signin import (
    CodeRequired,
    CognitoPool,
    CognitoSignIn,
    IdentityProviderUnreachable,
    NewPasswordRequired,
    SessionEnded,
    SignInResult,
    Tokens,
)
from plugins.aws.live.backoff import Backoff

log = logging.getLogger(__name__)

# Renew this long before the ID token expires: a request started just before
# expiry must not arrive at API Gateway just after it.
REFRESH_MARGIN_S = 300.0
# Offline: the first renewal again after 1 s, then doubling (jittered) up to this.
OFFLINE_RETRY_CAP_S = 30.0


def refresh_secret_name(pool: CognitoPool) -> str:
    """``cognito.refresh:eu-west-1_abc:client``: one sign-in per pool and app client."""
    return f"cognito.refresh:{pool.user_pool_id}:{pool.client_id}"


class NotSignedIn(SignInFailed, SignInExpired):
    """Nobody is signed in on this profile (or the sign-in ended): sign in again.
    A SignInExpired too, so the console's outbox keeps what waits for the new
    sign-in and offers the dialog, as it does for the API's 401."""


class CognitoSession:
    """Sign-in, tokens and sign-out of one person against one user pool."""

    def __init__(self, pool: CognitoPool, *, api_url: str = "", description: str = "",
                 demo: list[DemoLogin] | None = None, signin: CognitoSignIn | None = None,
                 clock: Callable[[], float] = time.time,
                 on_close: Callable[[], None] | None = None,
                 offline_backoff: Backoff | None = None) -> None:
        self.pool = pool
        self._api_url = api_url
        self._description = description or f"Cognito user pool {pool.user_pool_id}"
        self._demo = list(demo or [])
        self._signin = signin or CognitoSignIn(pool)
        self._clock = clock
        self._on_close = on_close
        self.secret_name = refresh_secret_name(pool)
        self._tokens: Tokens | None = None
        self._username = ""
        self._ended = False  # the user pool ended this sign-in (messages say "expired")
        # signed out here: no renewal (a page's request still in flight) may sign
        # the person in again from a token read before it was forgotten
        self._signed_out = False
        self._lock = threading.Lock()  # one renewal at a time
        # Cognito unreachable: no renewal before this instant (epoch s), and why
        self._offline_backoff = offline_backoff or Backoff(1.0, OFFLINE_RETRY_CAP_S)
        self._offline_until = 0.0
        self._offline_why = ""
        self._listeners: list[Callable[[Actor], None]] = []
        self._closed = threading.Event()
        self._retrying: threading.Thread | None = None
        self.silent_sign_ins = 0  # signed in by itself once Cognito answered again

    # ------------------------------------------------------------ what it is
    @property
    def api_url(self) -> str:
        return self._api_url

    @property
    def description(self) -> str:
        return self._description

    @property
    def username(self) -> str:
        return self._username

    @property
    def actor(self) -> Actor | None:
        tokens = self._tokens
        return None if tokens is None else _actor(tokens)

    def demo_logins(self) -> list[DemoLogin]:
        return list(self._demo)

    # ------------------------------------------------------------ signing in
    def sign_in(self, username: str, password: str) -> Actor | SignInChallenge:
        return self._take(self._signin.sign_in(username, password))

    def answer(self, challenge: SignInChallenge, response: str) -> Actor | SignInChallenge:
        state = challenge.state
        if isinstance(state, NewPasswordRequired):
            return self._take(self._signin.set_new_password(state, response))
        if isinstance(state, CodeRequired):
            return self._take(self._signin.answer_code(state, response))
        raise SignInFailed("this sign-in step does not belong to the Cognito sign-in; "
                           "start again")

    def resume(self) -> Actor | None:
        """Signed in from the stored refresh token, or None (none, or refused).
        IdentityProviderUnreachable when Cognito cannot be reached with one
        stored: the session then keeps trying by itself (on_signed_in says
        when it succeeded)."""
        try:
            with self._lock:
                if not self._refresh_locked(wait=False):
                    return None
        except IdentityProviderUnreachable:
            self._retry_in_background()
            raise
        return self.actor

    def on_signed_in(self, callback: Callable[[Actor], None]) -> None:
        """``callback(actor)`` whenever someone is signed in after nobody was:
        the dialog, ``resume``, or this session by itself once Cognito
        answers again. Called on the thread that signed in; must not block."""
        self._listeners.append(callback)

    @property
    def offline(self) -> bool:
        """Cognito could not be reached at the last try and no token is valid."""
        return self._offline_until > 0.0 and self._tokens is None

    # ------------------------------------------------------------ tokens
    def access_token(self) -> str:
        """The ID token (what the Cognito authorizer verifies), renewed first
        when it expires within REFRESH_MARGIN_S."""
        tokens = self._tokens
        if tokens is not None and not tokens.expires_within(REFRESH_MARGIN_S, self._clock()):
            return tokens.id_token
        with self._lock:
            tokens = self._tokens  # another thread may have renewed meanwhile
            if tokens is not None and not tokens.expires_within(REFRESH_MARGIN_S,
                                                                self._clock()):
                return tokens.id_token
            had = tokens is not None or self._ended or bool(self._stored_refresh())
            try:
                renewed = self._refresh_locked()
            except IdentityProviderUnreachable:
                if tokens is not None and not tokens.expires_within(30.0, self._clock()):
                    return tokens.id_token  # still good for a while: renew later
                raise
            if not renewed:
                state = "your sign-in has expired" if had else "you are not signed in"
                raise NotSignedIn(f"{state} — sign in again (smartiot login, or the console's "
                                  f"sign-in dialog) to {self._api_url or 'the API'} "
                                  f"({self.pool.user_pool_id})")
            assert self._tokens is not None
            return self._tokens.id_token

    def renew(self) -> bool:
        with self._lock:
            return self._refresh_locked()

    def _retry_in_background(self) -> None:
        """Sign in by itself once Cognito answers: one thread, jittered backoff."""
        with self._lock:
            if self._retrying is not None and self._retrying.is_alive():
                return
            self._retrying = threading.Thread(target=self._retry, daemon=True,
                                              name="cognito-sign-in-again")
            self._retrying.start()

    def _retry(self) -> None:
        while not self._closed.is_set():
            wait = self._offline_until - self._clock()
            if wait > 0 and self._closed.wait(wait):
                return
            if self._tokens is not None:
                return  # someone else's renewal got through
            try:
                with self._lock:
                    if self._tokens is not None:
                        return
                    if not self._refresh_locked(wait=False):
                        log.info("signing in again at %s: the sign-in was refused; sign in "
                                 "with the dialog", self._description)
                        return
                self.silent_sign_ins += 1
                log.info("signed in again at %s once it answered", self._description)
                return
            except IdentityProviderUnreachable as exc:
                log.info("still cannot reach %s: %s", self._description, exc)
            except SmartIotError as exc:  # throttled, or another answer: keep trying
                log.info("signing in again at %s: %s", self._description, exc)
                self._offline_until = self._clock() + self._offline_backoff.next_delay()

    def sign_out(self) -> None:
        """RevokeToken at Cognito (best effort: offline the tokens are still
        forgotten here, and the refresh token leaves the secret store)."""
        tokens = self._tokens
        refresh = tokens.refresh_token if tokens is not None else self._stored_refresh()
        if refresh:
            held = tokens or Tokens(self._username, (), "", 0.0, "", "", refresh)
            try:
                self._signin.sign_out(held)
            except SmartIotError as exc:
                log.info("signing out at %s: %s (forgotten here anyway)",
                         self._description, type(exc).__name__)
        self._forget()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self._tokens = None  # memory only: nothing of it survives the process
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()

    # ------------------------------------------------------------ internals
    def _take(self, result: SignInResult) -> Actor | SignInChallenge:
        if isinstance(result, NewPasswordRequired):
            return SignInChallenge(
                "new_password", result.username,
                "First sign-in: replace the temporary password with your own (12 or more "
                "characters with upper- and lower-case letters and a digit).",
                result)
        if isinstance(result, CodeRequired):
            where = ("your authenticator app" if result.kind == "totp"
                     else f"the SMS sent to {result.destination or 'your phone'}")
            return SignInChallenge("code", result.username,
                                   f"Enter the 6-digit code from {where}.", result)
        with self._lock:
            self._tokens = result
            self._username = result.username
            self._ended = False
            self._signed_out = False
            self._online()
        secrets.set_secret(self.secret_name, result.refresh_token)
        actor = _actor(result)
        self._notify(actor)
        return actor

    def _online(self) -> None:
        self._offline_until = 0.0
        self._offline_why = ""
        self._offline_backoff.reset()

    def _notify(self, actor: Actor) -> None:
        for callback in list(self._listeners):
            try:
                callback(actor)
            except Exception:  # one listener must not stop the others
                log.exception("a sign-in listener failed")

    def _stored_refresh(self) -> str:
        try:
            return secrets.get_secret(self.secret_name) or ""
        except SmartIotError:
            return ""

    def _refresh_locked(self, *, wait: bool = True) -> bool:
        """New ID and access tokens from the refresh token (memory, else the
        secret store); False when there is none or Cognito refuses it;
        IdentityProviderUnreachable when Cognito cannot be reached, at once
        (without asking) while the last failure's backoff runs, unless ``wait``
        is False (an explicit resume or the background retry)."""
        if self._signed_out:
            return False
        refresh = self._tokens.refresh_token if self._tokens is not None else ""
        refresh = refresh or self._stored_refresh()
        if not refresh:
            return False
        now = self._clock()
        if wait and now < self._offline_until:
            raise IdentityProviderUnreachable(
                f"{self._offline_why or 'Cognito cannot be reached'}; trying again in "
                f"{max(1, round(self._offline_until - now))} s")
        had = self._tokens is not None
        try:
            tokens = self._signin.refresh(refresh)
        except SessionEnded:
            self._tokens = None
            self._ended = True
            self._online()
            with contextlib.suppress(SmartIotError):
                secrets.delete_secret(self.secret_name)
            return False
        except IdentityProviderUnreachable as exc:
            self._offline_until = self._clock() + self._offline_backoff.next_delay()
            self._offline_why = str(exc).split("; check")[0]
            raise
        self._tokens = tokens
        self._username = tokens.username
        self._online()
        if not had:
            try:
                actor: Actor | None = _actor(tokens)
            except SignInFailed:
                actor = None  # in no role group: every call says so
            if actor is not None:
                # outside the lock: listeners may ask for a token
                threading.Thread(target=self._notify, args=(actor,), daemon=True,
                                 name="cognito-signed-in").start()
        return True

    def _forget(self) -> None:
        """Signed out: the tokens and the stored refresh token go together,
        under the lock, so a renewal on another thread (a page's request in
        flight) can neither find the stored token between the two nor sign in
        again afterwards."""
        with self._lock:
            self._tokens = None
            self._signed_out = True
            with contextlib.suppress(SmartIotError):
                secrets.delete_secret(self.secret_name)


def _actor(tokens: Tokens) -> Actor:
    """Who the ID token says this is: its strongest role group. The API reads
    the same claims (and the pool's current groups) and refuses anyway."""
    role = tokens.role
    if role is None:
        raise SignInFailed(f"{tokens.username} is in no role group of the user pool "
                           "(technician, support, engineer or admin); ask an admin")
    return Actor(tokens.username, role, tokens.organization)


def describe_pool(pool: CognitoPool) -> str:
    """For the dialog and messages: short, the pool id only where it helps."""
    from plugins.aws.console_access.endpoints import is_loopback

    if is_loopback(pool.endpoint_url):
        return "Amazon Cognito of the AWS sandbox (SRP: your password is not sent)"
    return (f"Amazon Cognito, user pool {pool.user_pool_id} (SRP: your password is not "
            "sent)")


__all__ = ["CognitoSession", "NotSignedIn", "describe_pool", "refresh_secret_name"]
