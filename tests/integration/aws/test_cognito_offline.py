"""The console's Cognito session when Cognito cannot be reached, on moto's
server behind a TCP link the test cuts and restores (a laptop losing and
finding its network).

- resuming a stored sign-in offline says Cognito is unreachable (a
  ServiceUnreachable: the console then opens on its cache), and the session
  signs the person in by itself once Cognito answers, telling its listeners;
- between tries every caller hears it at once, without a connection attempt
  each (a page read must not wait for Cognito's timeout);
- an ID token that is still valid keeps being used while a renewal fails;
- the live feed, waiting for a sign-in, connects as soon as one happens
  instead of at its next look."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from core import secrets
from core.errors import ServiceUnreachable
from core.model.roles import Actor, Role
from plugins.aws.cognito.signin import CognitoPool, IdentityProviderUnreachable
from plugins.aws.console_access.session import CognitoSession, NotSignedIn
from plugins.aws.live.backoff import Backoff
from plugins.aws.live.credentials import IdentityPoolCredentials
from plugins.aws.live.feed import IotLiveFeed
from plugins.aws.sandbox.mqtt import IotCoreStandIn
from tests.integration.aws.cognito_pool import ORG, PASSWORD, USERS, CognitoStage
from tests.integration.aws.dropping_link import DroppingLink
from tests.integration.aws.test_iot_access import _identity_pool


def wait_for(what: str, condition: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def link(cognito: CognitoStage) -> Iterator[DroppingLink]:
    link = DroppingLink(int(urlsplit(cognito.settings.endpoint_url).port or 0))
    yield link
    link.close()


def _session(cognito: CognitoStage, link: DroppingLink, **options: Any) -> CognitoSession:
    s = cognito.settings
    return CognitoSession(CognitoPool(s.region, s.user_pool_id, s.user_pool_client_id, link.url),
                          **options)


@pytest.fixture
def signed_in(cognito: CognitoStage, link: DroppingLink) -> Iterator[CognitoSession]:
    """Tom signed in once: his refresh token is in the secret store."""
    first = _session(cognito, link)
    assert first.sign_in(USERS[Role.TECHNICIAN], PASSWORD) == \
        Actor(USERS[Role.TECHNICIAN], Role.TECHNICIAN, ORG)
    first.close()
    yield first
    secrets.delete_secret(first.secret_name)


def test_offline_resume_says_so_and_the_session_signs_in_by_itself_once_back(
        cognito: CognitoStage, link: DroppingLink, signed_in: CognitoSession) -> None:
    # a restart without a network: nothing in memory, the refresh token stored
    session = _session(cognito, link, offline_backoff=Backoff(5.0, 5.0))
    heard: list[Actor] = []
    session.on_signed_in(heard.append)
    link.cut()
    with pytest.raises(ServiceUnreachable, match="could not reach"):
        session.resume()
    assert session.offline and session.actor is None
    # between tries, every caller hears it at once, with no connection attempt each
    tried = link.reset
    for _ in range(20):
        with pytest.raises(IdentityProviderUnreachable, match="trying again in"):
            session.access_token()
    assert link.reset == tried

    link.restore()
    # the listeners hear it from inside the renewal; the count follows it
    wait_for("the sign-in by itself", lambda: heard and session.silent_sign_ins)
    assert heard == [Actor(USERS[Role.TECHNICIAN], Role.TECHNICIAN, ORG)]
    assert session.silent_sign_ins == 1 and not session.offline
    assert session.access_token()  # no password asked
    session.close()


def test_a_valid_id_token_is_kept_while_cognito_cannot_renew_it(
        cognito: CognitoStage, link: DroppingLink, signed_in: CognitoSession) -> None:
    session = _session(cognito, link)
    assert session.resume() is not None
    tokens = session._tokens
    assert tokens is not None
    # inside the renewal margin, but with minutes left
    session._tokens = dataclasses.replace(tokens, expires_at=time.time() + 120)
    link.cut()
    assert session.access_token() == tokens.id_token
    # with seconds left it is not used: the API would refuse it on the way
    session._tokens = dataclasses.replace(tokens, expires_at=time.time() + 10)
    with pytest.raises(IdentityProviderUnreachable):
        session.access_token()
    session.close()


def test_the_live_feed_connects_as_soon_as_someone_signs_in(
        cognito: CognitoStage, link: DroppingLink) -> None:
    s = cognito.settings
    session = _session(cognito, link)
    credentials = IdentityPoolCredentials(_identity_pool(cognito), s.region, s.user_pool_id,
                                          session.access_token, endpoint_url=s.endpoint_url)
    broker = IotCoreStandIn().start()
    # it would look again for a sign-in only after an hour
    feed = IotLiveFeed(broker.ws_url, s.region, credentials, organization=lambda: ORG,
                       find_device=lambda _device: None, signin_poll_s=3600.0)
    session.on_signed_in(lambda _actor: feed.wake())
    try:
        feed.start()
        wait_for("the feed to wait for a sign-in", lambda: feed.link_status().state == "expired")
        session.sign_in(USERS[Role.SUPPORT], PASSWORD)
        wait_for("the live link", feed.subscribed.is_set)
        assert feed.states == ["starting", "expired", "starting", "connected"]
        assert feed.connection_state() == "connected"
    finally:
        feed.stop()
        broker.stop()
        session.close()
        secrets.delete_secret(session.secret_name)


def test_after_signing_out_nothing_signs_in_again_from_a_token_it_still_finds(
        cognito: CognitoStage, link: DroppingLink, signed_in: CognitoSession) -> None:
    """A page's request in flight when the person signs out may have read the
    stored refresh token just before it was forgotten (CI caught a console
    signed in again that way). Signed out is signed out: no renewal, no
    resume, until someone signs in."""
    session = _session(cognito, link)
    assert session.resume() == Actor(USERS[Role.TECHNICIAN], Role.TECHNICIAN, ORG)
    stored = secrets.get_secret(session.secret_name)
    assert stored
    session.sign_out()
    assert secrets.get_secret(session.secret_name) is None
    secrets.set_secret(session.secret_name, stored)  # what the request in flight still holds
    assert session.renew() is False and session.resume() is None and session.actor is None
    with pytest.raises(NotSignedIn):
        session.access_token()
    assert session.sign_in(USERS[Role.TECHNICIAN], PASSWORD) == \
        Actor(USERS[Role.TECHNICIAN], Role.TECHNICIAN, ORG)
    assert session.access_token()
    session.close()
