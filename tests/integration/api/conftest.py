"""The REST API over real HTTP: the WSGI adapter on a free loopback port, the
Lambda handlers behind it, the use cases over a real store (a SQLite file,
and PostgreSQL when SMARTIOT_TEST_PG_URL is set)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.crypto.keystore import CodeSigningKeys
from core.model.roles import Role
from core.ports.backend import Backend
from core.store import Store
from core.store.preferences import SqlPreferenceStore
from plugins.api.app import RateLimit, make_handler
from plugins.api.auth import TokenSigner
from plugins.api.wiring import build_api_services
from plugins.api.wsgi import ApiWsgiApp, serve, serve_in_thread
from tests.integration.store.conftest import (  # noqa: F401  (fixtures)
    connect_args_for,
    open_store,
    store,
    store_url,
)


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def data(self) -> Any:
        assert self.body["success"] is True, self.body
        return self.body["data"]

    @property
    def error(self) -> dict[str, Any]:
        assert self.body["success"] is False, self.body
        return self.body["error"]


class Client:
    def __init__(self, base: str, tokens: TokenSigner) -> None:
        self.base = base
        self.tokens = tokens

    def token(self, role: Role, user: str = "", org: str = "") -> str:
        return self.tokens.issue(user or f"{role.value}-1", role, org)

    def call(self, method: str, path: str, body: Any = None, *, role: Role | None = Role.ADMIN,
             user: str = "", org: str = "", headers: dict[str, str] | None = None,
             raw: bytes | None = None) -> Reply:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if role is not None:
            request.add_header("Authorization", f"Bearer {self.token(role, user, org)}")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return Reply(response.status, json.loads(response.read()),
                             dict(response.headers.items()))
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, json.loads(exc.read()), dict(exc.headers.items()))


@dataclass
class Api:
    client: Client
    store: Store
    backend: Backend


def backend_over(store: Store) -> Backend:  # noqa: F811
    return Backend("local", registry=store.registry, alerts=store.alerts,
                   telemetry=store.telemetry, firmware=store.firmware,
                   deployments=store.deployments, rules=store.rules, audit=store.audit,
                   command_log=store.commands, trusted_keys=store.trusted_keys,
                   users=store.users, quarantine=store.quarantine,
                   accounts=store.accounts)


def start_api(store: Store, tmp_path: Path, *,  # noqa: F811
              rate_limit: RateLimit | None = None
              ) -> Iterator[Api]:
    backend = backend_over(store)
    services = build_api_services(backend, signing_keys=CodeSigningKeys(tmp_path / "codesign"),
                                  preferences=SqlPreferenceStore(store.engine))
    tokens = TokenSigner.from_dir(tmp_path / "api")
    server = serve(ApiWsgiApp(make_handler(lambda: services, rate_limit=rate_limit), tokens),
                   "127.0.0.1", 0)
    serve_in_thread(server)
    try:
        yield Api(Client(f"http://127.0.0.1:{server.server_port}", tokens), store, backend)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def api(store: Store, tmp_path: Path) -> Iterator[Api]:  # noqa: F811
    yield from start_api(store, tmp_path)
