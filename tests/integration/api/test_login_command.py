"""`smartiot login` / `smartiot logout` on a team profile (the hub's own
sign-in over HTTP): a script signs in with --password-stdin, later commands
on the profile run as that person from the refresh token in the secret
store, and after logout they are refused with what to do. The same commands
on AWS (Cognito) are in tests/gui/test_aws_sign_in.py."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.cli import main
from core.crypto.keystore import CodeSigningKeys
from core.model import Device
from core.model.roles import Actor, Role
from core.store import Store
from core.store.preferences import SqlPreferenceStore
from plugins.api.app import make_handler
from plugins.api.auth import TokenSigner
from plugins.api.auth_service import build_sign_in
from plugins.api.wiring import build_api_services
from plugins.api.wsgi import ApiWsgiApp, serve, serve_in_thread
from tests.integration.api.conftest import backend_over

PASSWORD = "correct horse battery"


@pytest.fixture
def hub_url(tmp_path: Path) -> Iterator[str]:
    hub = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    hub.registry.upsert(Device("pump-1", device_type="pump", organization="acme"))
    backend = dataclasses.replace(backend_over(hub), accounts=hub.accounts)
    services = build_api_services(backend, signing_keys=CodeSigningKeys(tmp_path / "codesign"),
                                  preferences=SqlPreferenceStore(hub.engine))
    services.users.add_user(Actor("root", Role.ADMIN), "maria", Role.SUPPORT, "acme", PASSWORD)
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


def test_login_then_commands_run_as_that_person_until_logout(
        hub_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SMARTIOT_API_URL", hub_url)
    monkeypatch.setenv("SMARTIOT_DATA_DIR", str(tmp_path / "console"))
    config = ["--config", str(tmp_path / "console" / "config.toml")]

    assert main([*config, "devices", "list"]) == 1  # nobody signed in yet
    assert "sign in" in capsys.readouterr().err

    monkeypatch.setattr("sys.stdin", io.StringIO("not the password\n"))
    assert main([*config, "login", "--username", "maria", "--password-stdin"]) == 1
    assert "wrong user name or password" in capsys.readouterr().err

    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main([*config, "login", "--username", "maria", "--password-stdin"]) == 0
    out = capsys.readouterr()
    assert "as maria (support, organization acme)" in out.out
    assert PASSWORD not in out.out + out.err

    assert main([*config, "devices", "list"]) == 0
    assert "pump-1" in capsys.readouterr().out
    assert main([*config, "devices", "register", "pump-2", "--type", "pump"]) != 0
    assert "support" in capsys.readouterr().err  # the server refuses the role

    assert main([*config, "logout"]) == 0
    assert "signed out" in capsys.readouterr().out
    assert main([*config, "devices", "list"]) == 1
    assert "sign in" in capsys.readouterr().err


def test_login_on_a_profile_without_api_url_says_it_needs_none(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "config.toml"), "login", "--username", "x",
                 "--password-stdin"]) == 1
    assert "has no api_url" in capsys.readouterr().err
