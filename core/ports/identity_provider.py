"""Who signs people in when that is not the REST API itself: Cognito on AWS.

The hub's API has its own ``/auth`` routes (plugins/api/client/tokens.py);
API Gateway has none, so a backend plugin provides the sign-in instead
(``smartiot_register_identity_providers``) and the API client sends the
bearer token it hands out. Signing in may take more than one step (a new
password on the first sign-in, a code from an authenticator app): each step
that needs the person again comes back as a :class:`SignInChallenge` value,
which the sign-in dialog and ``smartiot login`` show and answer, instead of
an exception or a prompt buried in the provider.

Tokens are secrets: the provider keeps its short-lived tokens in memory and
its refresh token in the secret store (core.secrets), never in a file or a log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from core.model.roles import Actor

ChallengeKind = Literal["new_password", "code"]


@dataclass(frozen=True, slots=True)
class SignInChallenge:
    """The next step of a sign-in. ``kind``: "new_password" (the first sign-in
    with a temporary password: choose your own) or "code" (a second factor);
    ``prompt`` says to the person what to enter; ``state`` is the provider's
    own record of the step, handed back with the answer."""

    kind: ChallengeKind
    username: str
    prompt: str
    state: object = field(repr=False, compare=False, default=None)


@dataclass(frozen=True, slots=True)
class DemoLogin:
    """A user the provider offers to sign in as (the sandbox's demo users)."""

    username: str
    password: str = field(repr=False)
    role: str = ""


class IdentityProvider(Protocol):
    @property
    def api_url(self) -> str:
        """The REST API these tokens are for ("" when the profile's own api_url stands)."""
        ...

    @property
    def description(self) -> str:
        """Where people sign in, as the dialog names it (e.g. the user pool)."""
        ...

    @property
    def username(self) -> str:
        """The person signed in, or last signed in ("" before)."""
        ...

    @property
    def actor(self) -> Actor | None:
        """Who the tokens say the person is (role from their groups), or None."""
        ...

    def demo_logins(self) -> list[DemoLogin]:
        """Users to offer in the sign-in dialog (empty outside a sandbox)."""
        ...

    def sign_in(self, username: str, password: str) -> Actor | SignInChallenge:
        """Signed in, or the next step; refusals raise with a message saying what to do."""
        ...

    def answer(self, challenge: SignInChallenge, response: str) -> Actor | SignInChallenge:
        """Answer a step (the new password, or the code)."""
        ...

    def resume(self) -> Actor | None:
        """Signed in again from the stored refresh token, or None (none, or refused)."""
        ...

    def on_signed_in(self, callback: Callable[[Actor], None]) -> None:
        """Call ``callback(actor)`` whenever someone is signed in after nobody
        was, also when the provider does it by itself (a console started
        offline, once the provider answers again)."""
        ...

    def access_token(self) -> str:
        """The bearer token for the API, renewed first when about to expire;
        raises when nobody is signed in."""
        ...

    def renew(self) -> bool:
        """The API refused the token: renew it now; False when that is impossible."""
        ...

    def sign_out(self) -> None:
        """End the sign-in at the provider (best effort) and forget every token here."""
        ...

    def close(self) -> None:
        """Release what the provider started (a sandbox it launched, timers)."""
        ...
