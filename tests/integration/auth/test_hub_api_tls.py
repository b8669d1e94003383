"""The hub's REST API over HTTPS when the profile names a certificate and key:
a person signs in over TLS (verified against the team's CA), plain HTTP gets
no answer, a half-configured or unusable listen address is a clear error, and
only the process that runs the hub serves."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from core.config import load_config
from core.context import AppContext
from core.errors import ConfigError
from core.model.roles import Actor, Role
from core.plugins import PluginManager
from core.services.event_bus import EventBus
from core.services.wiring import build_services
from core.store import Store
from plugins.api import hub_server
from plugins.local.backend import LocalBackend
from tests.tls_certs import make_pki


def context_for(tmp_path: Path, **keys: str) -> AppContext:
    lines = "".join(f'{k} = "{v}"\n' for k, v in keys.items())
    (tmp_path / "config.toml").write_text(
        'profile = "team"\n[profiles.team]\nbroker = "mqtt://127.0.0.1:1"\n'
        f'database = "sqlite:///{tmp_path / "hub.db"}"\nhub = false\ndemo_fleet = false\n'
        + lines)
    config = load_config(tmp_path / "config.toml", tmp_path / "data")
    return AppContext(config, PluginManager(entry_points=False, blocked=()))


def test_sign_in_over_https(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    context = context_for(tmp_path, api_listen="127.0.0.1:0", api_tls_cert=str(pki.server_cert),
                          api_tls_key=str(pki.server_key))
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    backend = LocalBackend(store, EventBus())
    context.adopt_backend(backend)
    build_services(backend).users.add_user(Actor("root", Role.ADMIN), "maria", Role.ENGINEER,
                                           "", "maria's password")
    running = hub_server.start_api(context)
    try:
        assert running.url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(pki.ca))
        trusted.check_hostname = False  # the test CA names the broker's host, not this one
        request = urllib.request.Request(
            running.url + "/auth/login", method="POST",
            data=json.dumps({"username": "maria", "password": "maria's password"}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, context=trusted, timeout=30) as answer:
            assert json.loads(answer.read())["data"]["actor"]["role"] == "engineer"
        plain = running.url.replace("https://", "http://") + "/openapi.json"
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(plain, timeout=10)
    finally:
        running.stop()
        backend.close()
    # A console process (no hub in it) never serves, whatever its profile says.
    assert hub_server._serves_here(context) is False


def test_bad_settings_are_named(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    with pytest.raises(ConfigError, match="api_listen: 'hub' is not HOST:PORT"):
        hub_server.parse_listen("hub")
    with pytest.raises(ConfigError, match="give both PEM paths"):
        hub_server.tls_context(str(pki.server_cert), "")
    with pytest.raises(ConfigError, match=r"api_tls_key: .*missing\.pem does not exist"):
        hub_server.tls_context(str(pki.server_cert), str(tmp_path / "missing.pem"))
