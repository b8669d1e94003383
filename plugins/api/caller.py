"""Who is asking, and which version they last read, taken from the request
API Gateway (or the local WSGI adapter) hands over.

Routers get these as plain callables (``caller.actor``, ``caller.check_version``)
so they never read the raw event themselves.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from core.errors import ConcurrentModification, ValidationError
from core.model.roles import Actor
from plugins.api.auth import actor_from_claims
from plugins.api.rate_limit import RateLimit
from plugins.api.wiring import ApiServices


class Caller:
    def __init__(self, app: APIGatewayRestResolver, services: Callable[[], ApiServices],
                 rate_limit: RateLimit | None = None) -> None:
        self._app = app
        self._services = services
        self._rate_limit = rate_limit

    def actor(self) -> Actor:
        """The caller from the authorizer's claims, counted against its rate."""
        context = self._app.current_event.raw_event.get("requestContext") or {}
        claims = (context.get("authorizer") or {}).get("claims")
        who = actor_from_claims(claims)
        if self._rate_limit is not None:
            self._rate_limit.take(who.user)
        # A person in the user directory acts with its role and organization, and a
        # disabled account is refused (403), as in the console and the CLI.
        return self._services().users.effective_actor(who)

    def client(self) -> str:
        """The caller's address (sign-in counts failures per name and address)."""
        identity = (self._app.current_event.raw_event.get("requestContext") or {}).get(
            "identity")
        return str((identity or {}).get("sourceIp") or "")

    def if_match(self) -> str | None:
        value = self._app.current_event.headers.get("If-Match")
        return value.strip().strip('"').removeprefix("W/").strip('"') if value else None

    def check_version(self, current: str | int, what: str) -> None:
        """Refuse (409) an edit made from a read older than ``current``."""
        wanted = self.if_match()
        if wanted is not None and wanted != "*" and wanted != str(current):
            raise ConcurrentModification(
                f"{what} changed since version {wanted} (now {current}); read it again and "
                "retry")

    def int_if_match(self) -> int | None:
        """If-Match as the version number a versioned save expects (None: any)."""
        wanted = self.if_match()
        if wanted is None or wanted == "*":
            return None
        try:
            return int(wanted)
        except ValueError:
            raise ValidationError(f"If-Match: {wanted!r} is not a version number") from None
