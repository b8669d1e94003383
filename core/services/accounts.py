"""Signing in: a person proves who they are with their own password and gets
a short-lived access token, a rotating refresh token and, where the backend
manages broker accounts, their own broker login limited by their role.

The server decides everything that matters: the role and organization come
from the user directory, never from the request; a disabled account is
refused; the refresh token is 256 random bits stored only as its SHA-256,
replaced on every use, and a token presented twice (a copy replayed by
someone else, or a race lost) revokes the whole sign-in it belongs to.

Wrong passwords get one generic answer whatever was wrong (unknown name,
wrong password, no password set), so answers do not reveal who has an account;
failures are counted per person and per client address and, above a limit in
a window, refused with the time to wait (HTTP 429 with Retry-After). Every
sign-in, refusal, refresh and sign-out is in the audit trail.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.crypto.passwords import hash_password, needs_rehash, verify_password
from core.errors import PermissionDenied, SmartIotError
from core.model.roles import Actor
from core.model.timeutil import utcnow
from core.ports.accounts import AccountStore, RefreshRecord
from core.ports.broker_accounts import BrokerAccounts, BrokerLogin
from core.ports.hub import AuditTrail
from core.ports.user_directory import UserDirectory
from core.services.access import DENIED

log = logging.getLogger(__name__)

ACCESS_LIFETIME = timedelta(minutes=15)
REFRESH_LIFETIME = timedelta(days=30)
GENERIC_FAILURE = "wrong user name or password"
MAX_NAME_IN_AUDIT = 128
MAX_TRACKED = 10_000  # user names and addresses with recent failures, before pruning

# (actor, lifetime) -> a bearer token the API verifies (plugins.api.auth.TokenSigner locally).
IssueAccessToken = Callable[[Actor, timedelta], str]


class SignInFailed(SmartIotError):
    """HTTP 401 with the generic message, or a refresh token that does not work."""


class TooManyAttempts(SmartIotError):
    """HTTP 429: too many failed sign-ins for this person or client; wait
    ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class SignIn:
    """What a sign-in or a refresh hands back (the API's JSON, the client's state)."""

    actor: Actor
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    broker: BrokerLogin | None = None

    def __repr__(self) -> str:  # tokens never reach a log line
        return (f"SignIn(actor={self.actor!r}, access_expires_at={self.access_expires_at}, "
                f"refresh_expires_at={self.refresh_expires_at}, broker={self.broker!r})")


class LoginThrottle:
    """Failed sign-ins in a sliding window, per person and per client. At the
    limit the next attempt is refused until the oldest counted failure leaves
    the window; a success clears the person's count (not the client's: one
    address guessing many names stays throttled)."""

    def __init__(self, *, per_user: int = 5, per_client: int = 20, window_s: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_user = per_user
        self.per_client = per_client
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, user: str, client: str) -> None:
        now = self._clock()
        with self._lock:
            waits = [self._wait(f"user:{user.lower()}", self.per_user, now)]
            if client:
                waits.append(self._wait(f"client:{client}", self.per_client, now))
        wait = max(waits)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise TooManyAttempts(f"too many failed sign-ins; try again in {seconds} s",
                                  seconds)

    def failed(self, user: str, client: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) >= MAX_TRACKED:
                # Names guessed long ago need no memory: keep the map bounded.
                for key in [k for k, t in self._failures.items()
                            if not t or t[-1] <= now - self.window_s]:
                    del self._failures[key]
            for key in (f"user:{user.lower()}", f"client:{client}" if client else ""):
                if key:
                    self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, user: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{user.lower()}", None)

    def _wait(self, key: str, limit: int, now: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) < limit:
            return 0.0
        return times[len(times) - limit] + self.window_s - now


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SignInService:
    def __init__(self, directory: UserDirectory, accounts: AccountStore,
                 audit: AuditTrail | None, issue_access: IssueAccessToken, *,
                 broker: BrokerAccounts | None = None, throttle: LoginThrottle | None = None,
                 access_lifetime: timedelta = ACCESS_LIFETIME,
                 refresh_lifetime: timedelta = REFRESH_LIFETIME,
                 now: Callable[[], datetime] = utcnow) -> None:
        self._directory = directory
        self._accounts = accounts
        self._audit = audit
        self._issue = issue_access
        self._broker = broker
        self.throttle = throttle or LoginThrottle()
        self.access_lifetime = access_lifetime
        self.refresh_lifetime = refresh_lifetime
        self._now = now

    # ------------------------------------------------------------------ sign in
    def login(self, username: str, password: str, *, client: str = "") -> SignIn:
        name = username.strip()
        self.throttle.check(name, client)
        entry = self._directory.get(name)
        encoded = self._accounts.password_hash(name) if entry is not None else None
        # verify_password costs one argon2 run even without a hash: timing tells nothing.
        if entry is None or not verify_password(encoded, password):
            self.throttle.failed(name, client)
            self._record(name, "auth.login", {"outcome": DENIED, "reason": GENERIC_FAILURE,
                                              "client": client})
            raise SignInFailed(GENERIC_FAILURE)
        actor = Actor(entry.name, entry.role, entry.organization)
        if entry.disabled:
            self._record(name, "auth.login", {**actor.audit_details(), "outcome": DENIED,
                                              "reason": "account disabled", "client": client})
            raise PermissionDenied(f"the account {entry.name} is disabled; an admin can "
                                   "enable it again")
        self.throttle.succeeded(name)
        if encoded is not None and needs_rehash(encoded):
            self._accounts.set_password_hash(entry.name, hash_password(password), self._now())
        broker = self._provision_broker(actor)
        session = self._new_session(actor, secrets.token_hex(16), client, broker)
        self._record(entry.name, "auth.login", {**actor.audit_details(), "client": client,
                                                "broker_user": broker.username if broker
                                                else ""})
        return session

    def refresh(self, refresh_token: str, *, client: str = "",
                with_broker: bool = False) -> SignIn:
        """A new access token and a new refresh token for a valid, unused one.
        The old one stops working; using it again revokes the sign-in."""
        now = self._now()
        record, won = self._accounts.use_refresh(token_hash(refresh_token.strip()), now)
        if record is None:
            raise SignInFailed("the refresh token is not valid; sign in again")
        if not won:
            if record.revoked_at is None:
                # Used before: someone holds a copy. End the whole sign-in.
                self._accounts.revoke_family(record.family, now)
                reason = "refresh token reused: the sign-in is revoked"
            else:
                reason = "refresh token revoked"
            self._record(record.user, "auth.refresh", {"outcome": DENIED, "reason": reason,
                                                       "client": client})
            raise SignInFailed(f"{reason}; sign in again")
        if record.expires_at <= now:
            self._record(record.user, "auth.refresh", {"outcome": DENIED,
                                                       "reason": "refresh token expired",
                                                       "client": client})
            raise SignInFailed("the refresh token has expired; sign in again")
        entry = self._directory.get(record.user)
        if entry is None or entry.disabled:
            self._accounts.revoke_family(record.family, now)
            self._record(record.user, "auth.refresh", {
                "outcome": DENIED, "client": client,
                "reason": "account disabled" if entry else "account removed"})
            raise PermissionDenied(f"the account {record.user} is disabled; an admin can "
                                   "enable it again")
        actor = Actor(entry.name, entry.role, entry.organization)
        broker = self._provision_broker(actor) if with_broker else None
        session = self._new_session(actor, record.family, client, broker)
        self._record(entry.name, "auth.refresh", {**actor.audit_details(), "client": client})
        return session

    def logout(self, refresh_token: str, *, client: str = "") -> bool:
        """Revoke the sign-in the token belongs to (every rotation of it, also
        when an older one of them is presented). True if anything was live; an
        unknown token is not an error (signing out twice is harmless) and is not
        audited under anyone's name."""
        digest = token_hash(refresh_token.strip())
        now = self._now()
        record, won = self._accounts.use_refresh(digest, now)
        if record is None:
            return False
        revoked = self._accounts.revoke_family(record.family, now)
        self._record(record.user, "auth.logout", {"client": client, "revoked": revoked})
        return won or revoked > 0

    def change_own_password(self, actor: Actor, current: str, new: str, *,
                            client: str = "") -> int:
        """A person changes their own password, proving the current one; every
        sign-in of theirs ends (the number is returned) and they sign in again."""
        self.throttle.check(actor.user, client)
        if not verify_password(self._accounts.password_hash(actor.user), current):
            self.throttle.failed(actor.user, client)
            self._record(actor.user, "user.password", {**actor.audit_details(),
                                                       "outcome": DENIED,
                                                       "reason": "current password wrong"})
            raise SignInFailed("the current password is wrong")
        encoded = hash_password(new)
        now = self._now()
        self._accounts.set_password_hash(actor.user, encoded, now)
        ended = self._accounts.revoke_user(actor.user, now)
        self._record(actor.user, "user.password", {**actor.audit_details(), "self": True,
                                                   "signed_out": ended})
        return ended

    # ------------------------------------------------------------------ helpers
    def _new_session(self, actor: Actor, family: str, client: str,
                     broker: BrokerLogin | None) -> SignIn:
        now = self._now()
        refresh = secrets.token_urlsafe(32)
        refresh_expires = now + self.refresh_lifetime
        self._accounts.add_refresh(RefreshRecord(token_hash(refresh), actor.user, family, now,
                                                 refresh_expires, client=client))
        return SignIn(actor, self._issue(actor, self.access_lifetime),
                      now + self.access_lifetime, refresh, refresh_expires, broker)

    def _provision_broker(self, actor: Actor) -> BrokerLogin | None:
        if self._broker is None:
            return None
        try:
            return self._broker.provision(actor.user, actor.role)
        except SmartIotError as exc:
            # Signing in still works (the REST API needs no broker); the console
            # then shows no live feed and says why.
            log.warning("could not provision the broker account of %s: %s", actor.user, exc)
            return None

    def _record(self, user: str, action: str, details: dict[str, object]) -> None:
        if self._audit is None:
            return
        name = (user or "?")[:MAX_NAME_IN_AUDIT]
        try:
            self._audit.append(name, action, name, details)
        except Exception:
            log.exception("could not audit %s of %s", action, name)

