"""Signing in over real HTTP: the WSGI adapter on a loopback port, the /auth
routes and the use cases over a real store (SQLite, and PostgreSQL when
SMARTIOT_TEST_PG_URL is set). People are added by an admin through the same
use case as `smartiot users add`; the server, not the client, decides roles."""

from __future__ import annotations

import dataclasses
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.crypto.keystore import CodeSigningKeys
from core.model.roles import Actor, Role
from core.services.accounts import LoginThrottle
from core.store import Store
from core.store.preferences import SqlPreferenceStore
from plugins.api.app import make_handler
from plugins.api.auth import TokenSigner
from plugins.api.auth_service import build_sign_in
from plugins.api.wiring import build_api_services
from plugins.api.wsgi import ApiWsgiApp, serve, serve_in_thread
from tests.integration.api.conftest import Reply, backend_over
from tests.integration.store.conftest import (  # noqa: F401  (fixtures)
    connect_args_for,
    open_store,
    store,
    store_url,
)

ADMIN = Actor("root-admin", Role.ADMIN)
PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class AuthApi:
    base: str
    store: Store
    services: Any
    clock: Clock

    def call(self, method: str, path: str, body: Any = None, *, token: str = "",
             headers: dict[str, str] | None = None) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return Reply(response.status, json.loads(response.read()),
                             dict(response.headers.items()))
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, json.loads(exc.read()), dict(exc.headers.items()))

    def login(self, user: str, password: str = PASSWORD) -> Reply:
        return self.call("POST", "/auth/login", {"username": user, "password": password})

    def add(self, name: str, role: Role, org: str = "", password: str = PASSWORD) -> None:
        self.services.users.add_user(ADMIN, name, role, org, password)

    def audit(self, action: str) -> list[Any]:
        return [e for e in self.store.audit.entries() if e.action == action]


@pytest.fixture
def auth_api(store: Store, tmp_path: Path) -> Iterator[AuthApi]:  # noqa: F811
    backend = dataclasses.replace(backend_over(store), accounts=store.accounts)
    services = build_api_services(backend, signing_keys=CodeSigningKeys(tmp_path / "codesign"),
                                  preferences=SqlPreferenceStore(store.engine))
    tokens = TokenSigner.from_dir(tmp_path / "api")
    clock = Clock()
    sign_in = build_sign_in(backend, tokens,
                            throttle=LoginThrottle(per_user=3, per_client=6, window_s=60,
                                                   clock=clock))
    handler = make_handler(lambda: services, sign_in=lambda: sign_in)
    server = serve(ApiWsgiApp(handler, tokens), "127.0.0.1", 0)
    serve_in_thread(server)
    try:
        yield AuthApi(f"http://127.0.0.1:{server.server_port}", store, services, clock)
    finally:
        server.shutdown()
        server.server_close()


def test_login_refresh_rotates_and_logout_revokes(auth_api: AuthApi) -> None:
    auth_api.add("maria", Role.ENGINEER, "acme")
    reply = auth_api.login("maria")
    assert reply.status == 200, reply.body
    session = reply.data
    assert reply.headers["Cache-Control"] == "no-store"
    assert session["actor"] == {"user": "maria", "role": "engineer", "organization": "acme",
                                "permissions": session["actor"]["permissions"]}
    assert "device.command" in session["actor"]["permissions"]
    assert session["token_type"] == "Bearer" and session["expires_in"] == 900
    assert session["broker"] is None  # this server manages no broker accounts
    me = auth_api.call("GET", "/users/me", token=session["access_token"])
    assert (me.data["user"], me.data["role"]) == ("maria", "engineer")

    rotated = auth_api.call("POST", "/auth/refresh",
                            {"refresh_token": session["refresh_token"]})
    assert rotated.status == 200, rotated.body
    new = rotated.data
    assert new["refresh_token"] != session["refresh_token"]
    assert auth_api.call("GET", "/users/me", token=new["access_token"]).status == 200

    out = auth_api.call("POST", "/auth/logout", {"refresh_token": new["refresh_token"]})
    assert out.data == {"signed_out": True}
    again = auth_api.call("POST", "/auth/refresh", {"refresh_token": new["refresh_token"]})
    assert again.status == 401 and again.error["code"] == "UNAUTHORIZED"
    assert [e.details.get("outcome") for e in auth_api.audit("auth.login")] == [None]
    assert len(auth_api.audit("auth.refresh")) == 2  # one rotation, one refusal
    assert auth_api.audit("auth.logout")[0].actor == "maria"


def test_a_refresh_token_used_twice_revokes_the_sign_in(auth_api: AuthApi) -> None:
    auth_api.add("kim", Role.SUPPORT)
    first = auth_api.login("kim").data["refresh_token"]
    second = auth_api.call("POST", "/auth/refresh", {"refresh_token": first}).data
    replay = auth_api.call("POST", "/auth/refresh", {"refresh_token": first})
    assert replay.status == 401
    assert "reused" in replay.error["message"]
    # the thief's replay also ends the legitimate holder's newer token
    after = auth_api.call("POST", "/auth/refresh",
                          {"refresh_token": second["refresh_token"]})
    assert after.status == 401
    denied = [e for e in auth_api.audit("auth.refresh") if e.details.get("outcome") == "denied"]
    assert denied and "reused" in denied[0].details["reason"]


def test_wrong_password_and_unknown_user_get_one_generic_answer_then_429(
        auth_api: AuthApi) -> None:
    auth_api.add("lee", Role.TECHNICIAN)
    wrong = auth_api.login("lee", "not the password")
    nobody = auth_api.login("nobody-here", "not the password")
    assert wrong.status == nobody.status == 401
    assert wrong.error["message"] == nobody.error["message"] == "wrong user name or password"
    auth_api.login("lee", "still not it")
    auth_api.login("lee", "nor this one")
    blocked = auth_api.login("lee")  # even the right password waits now
    assert blocked.status == 429 and blocked.error["code"] == "TOO_MANY_REQUESTS"
    assert int(blocked.headers["Retry-After"]) >= 1
    failures = [e for e in auth_api.audit("auth.login") if e.details.get("outcome") == "denied"]
    assert [e.actor for e in failures] == ["lee", "nobody-here", "lee", "lee"]
    assert all(e.details["reason"] == "wrong user name or password" for e in failures)
    auth_api.clock.now += 61  # the window passes
    assert auth_api.login("lee").status == 200


def test_one_client_guessing_many_names_is_throttled(auth_api: AuthApi) -> None:
    codes = [auth_api.login(f"guess-{i}", "password guess").status for i in range(7)]
    assert codes == [401] * 6 + [429]


def test_a_disabled_account_is_refused_and_its_sign_ins_end(auth_api: AuthApi) -> None:
    auth_api.add("sam", Role.ENGINEER)
    session = auth_api.login("sam").data
    auth_api.services.users.set_disabled(ADMIN, "sam", True)
    refused = auth_api.login("sam")
    assert refused.status == 403 and "disabled" in refused.error["message"]
    assert auth_api.call("POST", "/auth/refresh",
                         {"refresh_token": session["refresh_token"]}).status == 401
    # the access token still in hand is refused by the server too
    assert auth_api.call("GET", "/devices", token=session["access_token"]).status == 403


def test_the_server_refuses_what_the_role_may_not_do_and_audits_it(auth_api: AuthApi) -> None:
    auth_api.add("tina", Role.TECHNICIAN)
    token = auth_api.login("tina").data["access_token"]
    reply = auth_api.call("POST", "/alerts/rules", {
        "name": "hot", "rule_type": "threshold",
        "params": {"metric": "temp", "op": ">", "value": 50}}, token=token)
    assert reply.status == 403 and reply.error["code"] == "FORBIDDEN"
    denied = [e for e in auth_api.store.audit.entries()
              if e.actor == "tina" and e.details.get("outcome") == "denied"]
    assert denied and denied[0].details["permission"] == "rule.edit"


def test_a_person_changes_their_own_password(auth_api: AuthApi) -> None:
    auth_api.add("ana", Role.SUPPORT)
    session = auth_api.login("ana").data
    wrong = auth_api.call("POST", "/auth/password", {
        "current_password": "not my password", "new_password": "a brand new secret"},
        token=session["access_token"])
    assert wrong.status == 401
    weak = auth_api.call("POST", "/auth/password", {
        "current_password": PASSWORD, "new_password": "short"}, token=session["access_token"])
    assert weak.status == 400 and weak.error["message"].startswith("password")
    changed = auth_api.call("POST", "/auth/password", {
        "current_password": PASSWORD, "new_password": "a brand new secret"},
        token=session["access_token"])
    assert changed.data == {"signed_out": 1}
    assert auth_api.login("ana").status == 401
    assert auth_api.login("ana", "a brand new secret").status == 200
    stored = auth_api.store.accounts.password_hash("ana")
    assert stored is not None and stored.startswith("$argon2id$")
    rows = json.dumps([dataclasses.asdict(e) for e in auth_api.store.audit.entries()],
                      default=str)
    assert "argon2" not in rows and "a brand new secret" not in rows


def test_an_admin_adds_a_person_with_a_password_over_rest(auth_api: AuthApi) -> None:
    auth_api.add("boss", Role.ADMIN)
    token = auth_api.login("boss").data["access_token"]
    added = auth_api.call("POST", "/users", {"name": "newbie", "role": "support",
                                             "password": "welcome aboard 1"}, token=token)
    assert added.status == 201, added.body
    assert "password" not in json.dumps(added.body)
    assert auth_api.login("newbie", "welcome aboard 1").data["actor"]["role"] == "support"
    listed = auth_api.call("GET", "/users", token=token)
    assert "argon2" not in json.dumps(listed.body)


def test_login_needs_no_bearer_but_other_routes_do(auth_api: AuthApi) -> None:
    assert auth_api.call("GET", "/devices").status == 401
    reply = auth_api.login("ghost", "whatever it is")
    assert reply.status == 401 and reply.error["message"] == "wrong user name or password"


def test_of_simultaneous_refreshes_with_one_token_exactly_one_wins(auth_api: AuthApi) -> None:
    auth_api.add("raj", Role.SUPPORT)
    token = auth_api.login("raj").data["refresh_token"]
    barrier = threading.Barrier(6)

    def refresh(_: int) -> int:
        barrier.wait()
        return auth_api.call("POST", "/auth/refresh", {"refresh_token": token}).status

    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(refresh, range(6)))
    assert codes == [200] + [401] * 5
