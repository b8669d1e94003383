"""The console on the hub's REST API (a profile's api_url): it opens no
database, asks the person to sign in, shows the server's devices, and a
change the server refuses (the person's role changed on the server after
they signed in) is refused with the server's message on the page."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from core import secrets
from core.config import load_config
from core.context import AppContext
from core.crypto.keystore import CodeSigningKeys
from core.model import Device
from core.model.roles import Actor, Role
from core.plugins import PluginManager
from core.store import Store
from core.store.preferences import SqlPreferenceStore
from plugins.api.app import make_handler
from plugins.api.auth import TokenSigner
from plugins.api.auth_service import build_sign_in
from plugins.api.client.tokens import refresh_secret_name
from plugins.api.wiring import build_api_services
from plugins.api.wsgi import ApiWsgiApp, serve, serve_in_thread
from tests.integration.api.conftest import backend_over

ADMIN = Actor("root-admin", Role.ADMIN)
PASSWORD = "correct horse battery"


@dataclass
class Hub:
    url: str
    store: Store
    services: Any


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    """The hub's side: a SQLite store with two pumps of acme, maria's account, and
    the REST API with sign-in on a free loopback port."""
    store = Store.open(f"sqlite:///{tmp_path / 'hub' / 'hub.db'}")
    for n in (1, 2):
        store.registry.upsert(Device(f"pump-{n}", name=f"Pump {n}", device_type="pump",
                                     organization="acme"))
    backend = dataclasses.replace(backend_over(store), accounts=store.accounts)
    services = build_api_services(backend,
                                  signing_keys=CodeSigningKeys(tmp_path / "hub" / "codesign"),
                                  preferences=SqlPreferenceStore(store.engine))
    services.users.add_user(ADMIN, "maria", Role.TECHNICIAN, "acme", PASSWORD)
    tokens = TokenSigner.from_dir(tmp_path / "hub" / "api")
    sign_in = build_sign_in(backend, tokens)
    server = serve(ApiWsgiApp(make_handler(lambda: services, sign_in=lambda: sign_in), tokens),
                   "127.0.0.1", 0)
    serve_in_thread(server)
    try:
        yield Hub(f"http://127.0.0.1:{server.server_port}", store, services)
    finally:
        server.shutdown()
        server.server_close()
        store.close()


def test_the_console_on_the_api_signs_in_shows_the_server_s_devices_and_its_refusals(
        hub: Hub, tmp_path: Path, qtbot: Any) -> None:
    from console.app import build_main_window

    config = load_config(tmp_path / "console" / "config.toml", tmp_path / "console" / "data",
                         env={"SMARTIOT_API_URL": hub.url})
    context = AppContext(config, PluginManager(entry_points=False, blocked=()))
    window = build_main_window(context)
    qtbot.addWidget(window)
    window.show()
    try:
        # No refresh token stored: the console asks who is there.
        qtbot.waitUntil(lambda: window.sign_in.dialog is not None
                        and window.sign_in.dialog.isVisible(), timeout=10_000)
        dialog = window.sign_in.dialog
        assert hub.url in dialog.findChild(type(dialog.error), "SignInServer").text()
        assert not window.sidebar.isEnabled()  # no page asks for data before sign-in

        dialog.username.setText("maria")
        dialog.password.setText("not her password")
        qtbot.keyClick(dialog.password, Qt.Key.Key_Return)  # Enter submits
        qtbot.waitUntil(lambda: dialog.error.isVisible() and dialog.sign_in_button.isEnabled(),
                        timeout=10_000)
        assert "wrong user name or password" in dialog.error.text()

        dialog.password.setText(PASSWORD)
        qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10_000)
        assert secrets.get_secret(refresh_secret_name(hub.url))  # kept in the secret store
        assert PASSWORD not in (tmp_path / "console").joinpath("window.ini").read_text() \
            if (tmp_path / "console" / "window.ini").exists() else True

        # The role shown is the server's: maria is a technician of acme.
        assert "maria" in window.sidebar.footer.text()
        assert "(technician)" in window.sidebar.footer.text()
        page = window.page_widget("devices")
        assert page is not None
        qtbot.waitUntil(lambda: page.model.rowCount() == 2, timeout=15_000)
        assert not (tmp_path / "console" / "data" / "smartiot.db").exists()  # no database here

        # An admin makes maria support on the hub; her console still offers "Register…"
        # (it cannot know), and the server refuses the request, audited.
        hub.services.users.set_role(ADMIN, "maria", Role.SUPPORT)
        assert page.register_button.isEnabled()
        page.register_device(Device("pump-9", device_type="pump", organization="acme"))
        qtbot.waitUntil(lambda: "Could not register pump-9" in page.status_label.text(),
                        timeout=10_000)
        assert "support" in page.status_label.text()
        assert hub.store.registry.find("pump-9") is None
        denied = [e for e in hub.store.audit.search(None)
                  if e.actor == "maria" and e.action == "device.register"]
        assert denied and denied[-1].details.get("outcome") == "denied"
    finally:
        window.close()
        context.close()


def test_the_next_start_resumes_from_the_refresh_token_and_sign_out_forgets_it(
        hub: Hub, tmp_path: Path, qtbot: Any) -> None:
    from console.app import build_main_window
    from plugins.api.client.tokens import TokenSession

    TokenSession(hub.url).sign_in("maria", PASSWORD)  # an earlier start signed in
    name = refresh_secret_name(hub.url)
    assert secrets.get_secret(name)
    config = load_config(tmp_path / "console" / "config.toml", tmp_path / "console" / "data",
                         env={"SMARTIOT_API_URL": hub.url})
    context = AppContext(config, PluginManager(entry_points=False, blocked=()))
    window = build_main_window(context)
    qtbot.addWidget(window)
    window.show()
    try:
        page_loaded = lambda: (window.page_widget("devices") is not None  # noqa: E731
                               and window.page_widget("devices").model.rowCount() == 2)
        qtbot.waitUntil(page_loaded, timeout=15_000)
        assert window.sign_in.dialog is None  # no password asked
        assert "(technician)" in window.sidebar.footer.text()

        window.sign_out_action.trigger()
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
        assert secrets.get_secret(name) is None
        assert [e.action for e in hub.store.audit.search(None)][-1] == "auth.logout"
    finally:
        window.close()
        context.close()


def test_an_unreachable_hub_at_start_is_said_in_the_sign_in_dialog(tmp_path: Path,
                                                                    qtbot: Any) -> None:
    import socket

    from console.app import build_main_window

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once closed
    secrets.set_secret(refresh_secret_name(url), "a refresh token from yesterday")
    config = load_config(tmp_path / "console" / "config.toml", tmp_path / "console" / "data",
                         env={"SMARTIOT_API_URL": url})
    context = AppContext(config, PluginManager(entry_points=False, blocked=()))
    window = build_main_window(context)
    qtbot.addWidget(window)
    window.show()
    try:
        qtbot.waitUntil(lambda: window.sign_in.dialog is not None
                        and window.sign_in.dialog.isVisible(), timeout=15_000)
        error = window.sign_in.dialog.error
        assert error.isVisible()
        assert f"the hub at {url} cannot be reached" in error.text()
        assert "Traceback" not in error.text()
    finally:
        window.close()
        context.close()
        secrets.delete_secret(refresh_secret_name(url))
