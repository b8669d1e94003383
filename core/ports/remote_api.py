"""A console's connection to a REST API (the hub's in the team set-up, API
Gateway on AWS) as the front end sees it: who is signed in, signing in and
out, and the FleetApi the pages call.

The profile's ``api_url`` selects it (core.config); the implementation comes
from a plugin (``smartiot_register_api_clients``), so neither core nor the
console shell knows HTTP. The password goes to the server once, at sign-in;
the refresh token lives in the secret store (core.secrets), never in a file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from core.model.roles import Actor
    from core.ports.broker_accounts import BrokerLogin
    from core.ports.fleet_api import FleetApi
    from core.ports.identity_provider import DemoLogin, SignInChallenge


class RemoteSession(Protocol):
    @property
    def base_url(self) -> str:
        """The server, as the sign-in dialog shows it."""
        ...

    @property
    def username(self) -> str:
        """The name last signed in with ("" before the first sign-in)."""
        ...

    @property
    def actor(self) -> Actor | None:
        """Who the server said the person is at the last sign-in (None before)."""
        ...

    def resume(self) -> bool:
        """Sign in again without a password, from the stored refresh token;
        False when there is none or the server refuses it (HubUnreachable-like
        errors propagate: the person should see that the hub is down)."""
        ...

    def sign_in(self, username: str, password: str) -> Actor | SignInChallenge:
        """Who the server takes the person for, or the next step of the sign-in
        (a new password, an MFA code: core.ports.identity_provider); refusals
        raise with the server's words."""
        ...

    def answer_challenge(self, challenge: SignInChallenge, response: str
                         ) -> Actor | SignInChallenge:
        """Answer a step :meth:`sign_in` returned."""
        ...

    def demo_logins(self) -> list[DemoLogin]:
        """Users the sign-in dialog offers (the sandbox's demo users), else empty."""
        ...

    def sign_out(self) -> None:
        """Tell the server and forget every token here."""
        ...

    def broker_login(self) -> BrokerLogin | None:
        """The person's own broker login the server handed out at sign-in (or
        when resuming), for the live feed; None where it manages none. Kept in
        memory only."""
        ...

    def fleet_api(self) -> FleetApi:
        """The use cases over the API, acting for whoever is signed in."""
        ...
