"""The REST API session of a profile whose API has no sign-in of its own
(API Gateway on AWS): a backend plugin's identity provider signs the person
in (Cognito, core.ports.identity_provider) and is the HTTP client's token
source, behind the same seam as the hub's TokenSession
(plugins/api/client/transport.py: ``access_token()`` before each call,
``renew()`` after a 401).

Everything else is the hub session's (plugins/api/client/remote.py): the
same HttpFleetApi, outbox and offline cache. The person's role is what the
provider read from the token (Cognito's groups), so pages grey out at once;
the API checks the token's claims itself on every call.

Started while the provider cannot be reached (a laptop offline) with a sign-in
to resume, the session opens as the last person signed in here, on the cached
pages with the outbox keeping their changes; when the provider has signed
them in again by itself (``on_signed_in``) the queued changes are sent.
"""

from __future__ import annotations

from pathlib import Path

from core.context import AppContext
from core.crypto.keystore import CodeSigningKeys
from core.errors import ServiceUnreachable
from core.model.roles import Actor
from core.ports.broker_accounts import BrokerLogin
from core.ports.identity_provider import DemoLogin, IdentityProvider, SignInChallenge
from core.registrations import IdentityProviderSpec
from plugins.api.client.remote import ApiSession


class IdentityApiSession(ApiSession):
    def __init__(self, provider: IdentityProvider, base_url: str, *,
                 timeout_s: float = 15.0, data_dir: Path | None = None) -> None:
        self.provider = provider
        super().__init__(provider.api_url or base_url, timeout_s=timeout_s, data_dir=data_dir)
        if not self._static:
            self.api.http.tokens = provider
        self._offline = False
        provider.on_signed_in(self._signed_in_by_provider)
        if data_dir is not None:
            # no code-signing key on the server side (AWS): this person's own key signs
            # images and deployment manifests, and images go straight to S3
            self.api.sign_locally(CodeSigningKeys(data_dir / "codesign"), data_dir / "uploads")

    @property
    def username(self) -> str:
        return self.provider.username

    @property
    def description(self) -> str:
        return self.provider.description

    def _user(self) -> str:
        return self.provider.username or (self._actor.user if self._actor is not None else "")

    def demo_logins(self) -> list[DemoLogin]:
        return self.provider.demo_logins()

    def resume(self) -> bool:
        if self._static:
            return super().resume()
        try:
            actor = self.provider.resume()
        except ServiceUnreachable:
            # Offline with a sign-in to resume: the cached pages and queued work
            # of the last person here, until the provider signs them in again.
            self._offline = True  # before: the provider may sign in again at any moment
            if not self._resume_offline():
                self._offline = False
                raise
            return True
        if actor is None:
            return False
        self._ready(actor)
        return True

    def _signed_in_by_provider(self, actor: Actor) -> None:
        """Back from offline: the provider signed the person in by itself."""
        if self._offline:
            self._offline = False
            self._ready(actor)

    def sign_in(self, username: str, password: str) -> Actor | SignInChallenge:
        return self._step(self.provider.sign_in(username, password))

    def answer_challenge(self, challenge: SignInChallenge, response: str
                         ) -> Actor | SignInChallenge:
        return self._step(self.provider.answer(challenge, response))

    def sign_out(self) -> None:
        self.provider.sign_out()
        self._actor = None
        self.api.__dict__.pop("actor", None)

    def broker_login(self) -> BrokerLogin | None:
        return None  # live topics on AWS use the identity pool, not a broker account

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.provider.close()

    def _step(self, result: Actor | SignInChallenge) -> Actor | SignInChallenge:
        return result if isinstance(result, SignInChallenge) else self._ready(result)


def provider_for(context: AppContext) -> IdentityProviderSpec | None:
    """The identity provider registered for the profile's backend, if any."""
    backend = context.config.profile.backend
    for spec in context.plugins.identity_providers().values():
        if spec.backend == backend:
            return spec
    return None


def connect(context: AppContext) -> ApiSession:
    """The profile's session: through its backend's identity provider when one
    is registered (aws: Cognito), else the hub's own sign-in."""
    spec = provider_for(context)
    if spec is None:
        from plugins.api.client.remote import connect as connect_hub

        return connect_hub(context)
    return IdentityApiSession(spec.connect(context), context.config.profile.api_url,
                              data_dir=context.config.data_dir)
