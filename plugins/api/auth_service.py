"""The /auth routes' use cases over a backend that keeps accounts (the hub's
store): core.services.accounts with this server's token signer as the issuer
of access tokens, so the tokens it hands out are the ones the WSGI adapter
verifies."""

from __future__ import annotations

from datetime import timedelta

from core.model.roles import Actor
from core.ports.backend import Backend
from core.services.accounts import (
    ACCESS_LIFETIME,
    REFRESH_LIFETIME,
    LoginThrottle,
    SignInService,
)
from plugins.api.auth import TokenSigner


def build_sign_in(backend: Backend, tokens: TokenSigner, *,
                  throttle: LoginThrottle | None = None,
                  access_lifetime: timedelta = ACCESS_LIFETIME,
                  refresh_lifetime: timedelta = REFRESH_LIFETIME) -> SignInService | None:
    """None when the backend keeps no accounts (then /auth answers 404)."""
    if backend.users is None or backend.accounts is None:
        return None

    def issue(actor: Actor, lifetime: timedelta) -> str:
        return tokens.issue(actor.user, actor.role, actor.organization,
                            hours=lifetime.total_seconds() / 3600)

    return SignInService(backend.users, backend.accounts, backend.audit, issue,
                         broker=backend.broker_accounts, throttle=throttle,
                         access_lifetime=access_lifetime, refresh_lifetime=refresh_lifetime)
