"""Screenshots of the console on a hub's REST API: the sign-in dialog (after a
wrong password) and the window signed in, Devices page from the server.

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python scripts/screenshot_sign_in.py \
        docs/screenshots

A throw-away hub (SQLite store, a few devices, one account) serves the API on
a free loopback port; config, data and secrets live in a temporary directory.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from scripts.shot_tools import grab as _grab  # noqa: E402
from scripts.shot_tools import wait_for  # noqa: E402


def main(out: Path, theme: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="smartiot-signin-"))
    os.environ["SMARTIOT_DATA_DIR"] = str(tmp / "data")
    os.environ.setdefault("SMARTIOT_SECRETS_BACKEND", "file")
    os.environ.setdefault("SMARTIOT_SECRETS_PASSPHRASE", "screenshot only")

    from console.app import build_main_window, ensure_application
    from core.config import load_config
    from core.context import AppContext
    from core.crypto.keystore import CodeSigningKeys
    from core.model import Alert, Device, Location, Severity
    from core.model.roles import Actor, Role
    from core.plugins import PluginManager
    from core.ports.backend import Backend
    from core.store import Store
    from core.store.preferences import SqlPreferenceStore
    from plugins.api.app import make_handler
    from plugins.api.auth import TokenSigner
    from plugins.api.auth_service import build_sign_in
    from plugins.api.wiring import build_api_services
    from plugins.api.wsgi import ApiWsgiApp, serve, serve_in_thread

    store = Store.open(f"sqlite:///{tmp / 'hub' / 'hub.db'}")
    places = [("Hall A", 48.137, 11.575), ("Hall B", 48.139, 11.571), ("Roof", 48.136, 11.58)]
    for n in range(1, 10):
        label, lat, lon = places[n % 3]
        store.registry.upsert(Device(f"pump-{n:02d}", name=f"Pump {n}", device_type="pump",
                                     organization="acme", tags=frozenset({label.lower()}),
                                     location=Location(lat, lon, label),
                                     firmware_version="1.4.2"))
    store.alerts.add(Alert("pump-03", "rule-pressure", Severity.WARNING, "pressure high", 9.5))
    backend = Backend("local", registry=store.registry, alerts=store.alerts,
                      telemetry=store.telemetry, firmware=store.firmware,
                      deployments=store.deployments, rules=store.rules, audit=store.audit,
                      command_log=store.commands, trusted_keys=store.trusted_keys,
                      users=store.users, accounts=store.accounts)
    services = build_api_services(backend, signing_keys=CodeSigningKeys(tmp / "hub" / "keys"),
                                  preferences=SqlPreferenceStore(store.engine))
    services.users.add_user(Actor("root", Role.ADMIN), "maria", Role.TECHNICIAN, "acme",
                            "correct horse battery")
    tokens = TokenSigner.from_dir(tmp / "hub" / "api")
    sign_in = build_sign_in(dataclasses.replace(backend), tokens)
    server = serve(ApiWsgiApp(make_handler(lambda: services, sign_in=lambda: sign_in), tokens),
                   "127.0.0.1", 0)
    serve_in_thread(server)
    url = f"http://127.0.0.1:{server.server_port}"

    app = ensure_application()
    config = load_config(tmp / "config" / "config.toml", tmp / "data",
                         env={"SMARTIOT_API_URL": url, "SMARTIOT_THEME": theme})
    context = AppContext(config, PluginManager())
    window = build_main_window(context)
    window.resize(1280, 800)
    window.show()
    flow = window.sign_in
    assert flow is not None
    wait_for(app, lambda: flow.dialog is not None and flow.dialog.isVisible())
    dialog = flow.dialog
    assert dialog is not None
    dialog.username.setText("maria")
    dialog.password.setText("not my password")
    dialog.submit()
    wait_for(app, lambda: dialog.error.isVisible() and dialog.sign_in_button.isEnabled())
    _grab(app, dialog, out / f"sign-in-dialog-{theme}.png")
    dialog.password.setText("correct horse battery")
    dialog.submit()
    wait_for(app, lambda: not dialog.isVisible())
    page = window.page_widget("devices")
    wait_for(app, lambda: page is not None and page.model.rowCount() == 9)  # type: ignore[attr-defined]
    _grab(app, window, out / f"api-console-devices-{theme}.png")
    for page_id in os.environ.get("SMARTIOT_SHOT_PAGES", "").split(","):
        if page_id:  # a look at the other pages on the API (not kept in docs/)
            window.show_page(page_id)
            end = time.monotonic() + 4
            while time.monotonic() < end:
                app.processEvents()
                time.sleep(0.05)
            _grab(app, window, out / f"api-console-{page_id}-{theme}.png")
    window.close()
    context.close()
    server.shutdown()
    store.close()


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    main(target, sys.argv[2] if len(sys.argv) > 2 else "light")
