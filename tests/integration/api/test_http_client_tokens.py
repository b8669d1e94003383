"""The HTTP client's tokens against the real /auth routes over HTTP: the access
token is renewed from the refresh token before it expires and after a 401,
one refresh at a time (the server revokes a sign-in whose used refresh token
comes back); the refresh token lives in the secret store, never in the
config file; sign-out ends it on the server. And 429 is a clear "slow down"."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import secrets
from core.crypto.keystore import CodeSigningKeys
from core.model import Device
from core.model.roles import Actor, Role
from core.store import Store
from core.store.preferences import SqlPreferenceStore
from plugins.api.app import RateLimit, make_handler
from plugins.api.auth import TokenSigner
from plugins.api.auth_service import build_sign_in
from plugins.api.client import HttpFleetApi, SignInRequired, SlowDown, StaticToken
from plugins.api.client.tokens import TokenSession, refresh_secret_name
from plugins.api.wiring import build_api_services
from plugins.api.wsgi import ApiWsgiApp, serve, serve_in_thread
from tests.integration.api.conftest import backend_over, start_api
from tests.integration.store.conftest import (  # noqa: F401  (fixtures)
    open_store,
    store,
    store_url,
)

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hub_url(tmp_path: Path) -> Iterator[str]:
    hub = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    hub.registry.upsert(Device("pump-1", device_type="pump", organization="acme"))
    backend = dataclasses.replace(backend_over(hub), accounts=hub.accounts)
    services = build_api_services(backend, signing_keys=CodeSigningKeys(tmp_path / "codesign"),
                                  preferences=SqlPreferenceStore(hub.engine))
    services.users.add_user(Actor("root", Role.ADMIN), "maria", Role.ENGINEER, "acme", PASSWORD)
    tokens = TokenSigner.from_dir(tmp_path / "api")
    sign_in = build_sign_in(backend, tokens)
    server = serve(ApiWsgiApp(make_handler(lambda: services, sign_in=lambda: sign_in), tokens),
                   "127.0.0.1", 0)
    serve_in_thread(server)
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        hub.close()


def test_tokens_are_renewed_in_time_rotated_and_kept_only_in_the_secret_store(
        hub_url: str, tmp_path: Path) -> None:
    clock = Clock()
    session = TokenSession(hub_url, clock=clock)
    actor = session.sign_in("maria", PASSWORD)
    assert (actor["user"], actor["role"], actor["organization"]) == ("maria", "engineer", "acme")
    name = refresh_secret_name(hub_url)
    first_refresh = secrets.get_secret(name)
    first_access = session.access_token()
    assert first_refresh and first_access

    api = HttpFleetApi(hub_url, session)
    assert [d.device_id for d in api.devices.all()] == ["pump-1"]
    clock.now += 900 - 30  # within a minute of the 15-minute expiry: renewed first
    assert api.devices.get("pump-1").device_id == "pump-1"
    # renewed (the server's token may read the same within one second), so rotated:
    assert secrets.get_secret(name) not in (None, first_refresh)

    # Threads asking at once while the token is stale renew once: a second use of
    # the same refresh token would make the server revoke the whole sign-in.
    clock.now += 900
    errors: list[BaseException] = []

    def read() -> None:
        try:
            api.devices.get("pump-1")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert api.devices.get("pump-1").device_id == "pump-1"

    for path in tmp_path.rglob("*.toml"):
        assert secrets.get_secret(name) not in path.read_text()

    session.sign_out()
    assert secrets.get_secret(name) is None
    clock.now += 3600
    with pytest.raises(SignInRequired, match="sign in"):
        api.devices.get("pump-1")


def test_a_wrong_password_is_refused_with_the_server_s_words(hub_url: str) -> None:
    with pytest.raises(SignInRequired, match=r"^wrong user name or password$"):
        TokenSession(hub_url).sign_in("maria", "not it at all")


def test_too_many_requests_is_a_clear_slow_down(store: Store,  # noqa: F811
                                                tmp_path: Path) -> None:
    gen = start_api(store, tmp_path, rate_limit=RateLimit(2))
    server = next(gen)
    try:
        token = server.client.tokens.issue("sam", Role.SUPPORT, "acme")
        api = HttpFleetApi(server.client.base, StaticToken(token), retries=0)
        with pytest.raises(SlowDown, match="slow down: sam sent more than 2 requests"):
            for _ in range(5):
                api.devices.list()
    finally:
        gen.close()  # type: ignore[attr-defined]
