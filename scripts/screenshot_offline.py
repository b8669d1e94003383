"""Screenshots of work on a bad connection: the console on a hub's REST API
after the link to it was cut (the offline banner over cached pages, an
acknowledgement waiting in the outbox in the status bar), and the queued-actions
dialog once the link is back and the server refused the acknowledgement
because someone else resolved the alert meanwhile.

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python scripts/screenshot_offline.py \
        docs/screenshots

A throw-away hub (SQLite store, a few devices, one account) serves the API on
a free loopback port behind a small TCP proxy the script closes; config, data
and secrets live in a temporary directory.
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
    tmp = Path(tempfile.mkdtemp(prefix="smartiot-offline-"))
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
    from tests.integration.api.link import Link

    store = Store.open(f"sqlite:///{tmp / 'hub' / 'hub.db'}")
    places = [("Hall A", 48.137, 11.575), ("Hall B", 48.139, 11.571), ("Roof", 48.136, 11.58)]
    for n in range(1, 10):
        label, lat, lon = places[n % 3]
        store.registry.upsert(Device(f"pump-{n:02d}", name=f"Pump {n}", device_type="pump",
                                     organization="acme", tags=frozenset({label.lower()}),
                                     location=Location(lat, lon, label),
                                     firmware_version="1.4.2"))
    pressure = Alert("pump-03", "rule-pressure", Severity.WARNING, "pressure high", 9.5)
    heat = Alert("pump-07", "rule-temperature", Severity.CRITICAL, "temperature high", 88.0)
    store.alerts.add(pressure)
    store.alerts.add(heat)
    backend = Backend("local", registry=store.registry, alerts=store.alerts,
                      telemetry=store.telemetry, firmware=store.firmware,
                      deployments=store.deployments, rules=store.rules, audit=store.audit,
                      command_log=store.commands, trusted_keys=store.trusted_keys,
                      users=store.users, accounts=store.accounts)
    services = build_api_services(backend, signing_keys=CodeSigningKeys(tmp / "hub" / "keys"),
                                  preferences=SqlPreferenceStore(store.engine))
    admin = Actor("ada", Role.ADMIN, "acme")
    services.users.add_user(Actor("root", Role.ADMIN), "maria", Role.TECHNICIAN, "acme",
                            "correct horse battery")
    tokens = TokenSigner.from_dir(tmp / "hub" / "api")
    sign_in = build_sign_in(dataclasses.replace(backend), tokens)
    server = serve(ApiWsgiApp(make_handler(lambda: services, sign_in=lambda: sign_in,
                                           idempotency=lambda: store.idempotency), tokens),
                   "127.0.0.1", 0)
    serve_in_thread(server)
    link = Link(server.server_port)

    app = ensure_application()
    config = load_config(tmp / "config" / "config.toml", tmp / "data",
                         env={"SMARTIOT_API_URL": link.url, "SMARTIOT_THEME": theme})
    context = AppContext(config, PluginManager())
    remote = context.remote
    assert remote is not None
    remote.sign_in("maria", "correct horse battery")
    window = build_main_window(context)
    window.resize(1280, 800)
    window.show()
    wait_for(app, lambda: window.sidebar.isEnabled())
    window.show_page("alerts")
    page = window.page_widget("alerts")
    wait_for(app, lambda: page is not None and page.model.rowCount() == 2)  # type: ignore[attr-defined]
    assert page is not None

    link.cut()  # the laptop leaves the building
    page.select_alerts([pressure.alert_id])  # type: ignore[attr-defined]
    page.acknowledge_selected(comment="on my way")  # type: ignore[attr-defined]
    wait_for(app, lambda: "queued" in page.message.text(), 30)  # type: ignore[attr-defined]
    page.select_alerts([heat.alert_id])  # type: ignore[attr-defined]
    page.acknowledge_selected(comment="checking the cooling")  # type: ignore[attr-defined]
    work = window.offline_work
    assert work is not None
    wait_for(app, lambda: work.status().pending == 2, 30)
    banner = window.offline_banner
    wait_for(app, lambda: banner is not None and banner.isVisible())
    end = time.monotonic() + 3
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.05)
    _grab(app, window, out / f"offline-pending-actions-{theme}.png")

    # Meanwhile someone else resolves one of them; then the link comes back.
    services.alerts.resolve(pressure.alert_id, admin, "valve replaced")
    link.restore()
    indicator = window.pending_actions
    assert indicator is not None
    wait_for(app, lambda: indicator.decide_button.isVisible(), 90)
    dialog = indicator.open_review()
    _grab(app, dialog, out / f"offline-queued-actions-conflict-{theme}.png")
    dialog.close()
    window.close()
    context.close()
    link.cut()
    server.shutdown()
    store.close()


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    main(target, sys.argv[2] if len(sys.argv) > 2 else "light")
