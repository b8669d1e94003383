"""Work that survives a bad connection, with real parts: the hub's REST API
(sign-in, Idempotency-Key answers on SQLite and PostgreSQL) served over HTTP
behind a TCP link the test breaks, and the console's real window.

- An acknowledgement whose answer is lost is kept in the outbox, survives a
  console restart while the link is down (the restarted console shows the
  cached alerts, marked offline, and the pending action with its age), and is
  applied exactly once when the link returns: one audit entry.
- A queued acknowledgement of an alert someone else resolved meanwhile is
  shown for a decision and, dropped, changes nothing of the other person's.
- Neither the access token nor the refresh token reaches a log line or any
  file in the console's configuration and data directories.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core import secrets
from core.config import load_config
from core.context import AppContext
from core.crypto.keystore import CodeSigningKeys
from core.model import Alert, AlertState, Device, Severity
from core.model.roles import Actor, Role
from core.plugins import PluginManager
from core.ports.audit import AuditFilter
from core.ports.offline import ActionState
from core.store import Store
from core.store.preferences import SqlPreferenceStore
from plugins.api.app import make_handler
from plugins.api.auth import TokenSigner
from plugins.api.auth_service import build_sign_in
from plugins.api.client.tokens import refresh_secret_name
from plugins.api.wiring import build_api_services
from plugins.api.wsgi import ApiWsgiApp, serve, serve_in_thread
from tests.integration.api.conftest import backend_over
from tests.integration.api.link import Link
from tests.integration.store.conftest import (  # noqa: F401  (fixtures)
    connect_args_for,
    open_store,
    store,
    store_url,
)

pytestmark = pytest.mark.postgres

ADMIN = Actor("root-admin", Role.ADMIN)
PASSWORD = "correct horse battery"


@dataclass
class Hub:
    link: Link
    direct_url: str
    store: Store
    services: Any


@pytest.fixture
def hub(store: Store, tmp_path: Path) -> Iterator[Hub]:  # noqa: F811
    """The hub's REST API (as `smartiot hub --api` serves it: sign-in, idempotency
    keys in its store) and a link in front of it that the test can cut."""
    store.registry.upsert(Device("pump-1", name="Pump 1", device_type="pump",
                                 organization="acme"))
    backend = dataclasses.replace(backend_over(store), accounts=store.accounts)
    services = build_api_services(backend,
                                  signing_keys=CodeSigningKeys(tmp_path / "hub" / "codesign"),
                                  preferences=SqlPreferenceStore(store.engine))
    services.users.add_user(ADMIN, "sam", Role.SUPPORT, "acme", PASSWORD)
    tokens = TokenSigner.from_dir(tmp_path / "hub" / "api")
    sign_in = build_sign_in(backend, tokens)
    server = serve(ApiWsgiApp(make_handler(lambda: services, sign_in=lambda: sign_in,
                                           idempotency=lambda: store.idempotency), tokens),
                   "127.0.0.1", 0)
    serve_in_thread(server)
    link = Link(server.server_port)
    try:
        yield Hub(link, f"http://127.0.0.1:{server.server_port}", store, services)
    finally:
        link.cut()
        server.shutdown()
        server.server_close()


def _alert(hub: Hub, message: str) -> Alert:
    alert = Alert("pump-1", "rule-high", Severity.WARNING, message, 9.5)
    hub.store.alerts.add(alert)
    return alert


def _console(hub: Hub, tmp_path: Path) -> AppContext:
    config = load_config(tmp_path / "console" / "config.toml", tmp_path / "console" / "data",
                         env={"SMARTIOT_API_URL": hub.link.url})
    return AppContext(config, PluginManager(entry_points=False, blocked=()))


def _window(context: AppContext, qtbot: Any) -> Any:
    from console.app import build_main_window

    window = build_main_window(context)
    qtbot.addWidget(window)
    window.show()
    return window


def _alerts_page(window: Any, qtbot: Any, count: int) -> Any:
    qtbot.waitUntil(lambda: window.sidebar.isEnabled(), timeout=30_000)
    window.show_page("alerts")
    page = window.page_widget("alerts")
    assert page is not None
    qtbot.waitUntil(lambda: page.model.rowCount() == count, timeout=30_000)
    return page


def _acknowledgements(hub: Hub, alert_id: str) -> list[Any]:
    return [e for e in hub.store.audit.search(AuditFilter(action="alert.acknowledge",
                                                          subject=alert_id))
            if e.details.get("outcome", "ok") != "denied"]


def _outbox_rows(tmp_path: Path) -> list[tuple[Any, ...]]:
    path = tmp_path / "console" / "data" / "offline" / "outbox.sqlite3"
    with sqlite3.connect(path) as db:
        return db.execute("SELECT label, state, headers, body FROM actions").fetchall()


def test_an_acknowledgement_lost_on_the_line_survives_a_restart_and_is_applied_once(
        hub: Hub, tmp_path: Path, qtbot: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    alert = _alert(hub, "pressure high")
    context = _console(hub, tmp_path)
    remote = context.remote
    assert remote is not None
    remote.sign_in("sam", PASSWORD)  # the refresh token goes to the secret store
    window = _window(context, qtbot)
    page = _alerts_page(window, qtbot, 1)
    access_token = remote.tokens.access_token()  # type: ignore[attr-defined]

    # The line dies while the server answers: the acknowledgement is applied
    # there, but the console never hears it.
    hub.link.lose_answers = True
    page.select_alerts([alert.alert_id])
    page.acknowledge_selected(comment="on my way")
    qtbot.waitUntil(lambda: "queued" in page.message.text(), timeout=30_000)
    hub.link.cut()
    assert hub.store.alerts.get(alert.alert_id).state is AlertState.ACKNOWLEDGED
    assert len(_acknowledgements(hub, alert.alert_id)) == 1
    indicator = window.pending_actions
    qtbot.waitUntil(lambda: indicator.label.text().startswith("1 action pending"),
                    timeout=5_000)
    assert "oldest" in indicator.label.text()

    # The console is closed and started again while the link is still down.
    window.close()
    context.close()
    rows = _outbox_rows(tmp_path)
    assert [(r[0], r[1]) for r in rows] == [
        (f"Acknowledge alert {alert.alert_id[:12]}…", "pending")]
    assert "on my way" in rows[0][3]
    hub.link.lose_answers = False

    context = _console(hub, tmp_path)
    window = _window(context, qtbot)
    # Signed in from the cache (the server cannot say who this is): cached pages.
    page = _alerts_page(window, qtbot, 1)
    assert window.pending_actions.label.text().startswith("1 action pending")
    banner = window.offline_banner
    # The banner reads the session's state once a second: it names the cached data's age.
    qtbot.waitUntil(lambda: banner.isVisible()
                    and banner.text().startswith("Offline — showing data from "), timeout=5_000)
    assert page.model.alert_at(0).alert_id == alert.alert_id

    # The link comes back: the outbox sends it again with the same key, and the
    # server answers what it answered the first time instead of acknowledging twice.
    hub.link.restore()
    work = window.offline_work
    qtbot.waitUntil(lambda: work.status().pending == 0, timeout=60_000)
    assert work.status().needs_decision == 0
    entries = _acknowledgements(hub, alert.alert_id)
    assert len(entries) == 1 and entries[0].actor == "sam"
    stored = hub.store.alerts.get(alert.alert_id)
    assert stored.acknowledged_by == "sam" and stored.ack_comment == "on my way"
    assert _outbox_rows(tmp_path) == []
    qtbot.waitUntil(lambda: not window.pending_actions.isVisible(), timeout=5_000)

    # No token in any log line, nor in any file of the console's directories.
    refresh = secrets.get_secret(refresh_secret_name(hub.link.url))
    assert refresh and access_token
    logged = "\n".join(r.getMessage() for r in caplog.records)
    # Every refresh token ever sent (also the rotated ones) and the password:
    # the server logs a handler's arguments at DEBUG, never these.
    assert "refresh_token='" not in logged and PASSWORD not in logged
    for token in (access_token, refresh):
        assert token not in logged
        for path in (tmp_path / "console").rglob("*"):
            if path.is_file():
                assert token.encode() not in path.read_bytes(), path
    assert b"Bearer" not in (tmp_path / "console" / "data" / "offline" /
                             "outbox.sqlite3").read_bytes()
    window.close()
    context.close()


def test_a_queued_action_that_conflicts_is_shown_for_a_decision_not_applied(
        hub: Hub, tmp_path: Path, qtbot: Any) -> None:
    alert = _alert(hub, "temperature high")
    context = _console(hub, tmp_path)
    remote = context.remote
    assert remote is not None
    remote.sign_in("sam", PASSWORD)
    window = _window(context, qtbot)
    page = _alerts_page(window, qtbot, 1)

    hub.link.cut()
    page.select_alerts([alert.alert_id])
    page.acknowledge_selected(comment="mine")
    qtbot.waitUntil(lambda: "queued" in page.message.text(), timeout=30_000)
    # Meanwhile someone else, online, resolves the alert.
    hub.services.alerts.resolve(alert.alert_id, ADMIN, "fixed it")

    hub.link.restore()
    indicator = window.pending_actions
    qtbot.waitUntil(lambda: indicator.decide_button.isVisible(), timeout=60_000)
    assert indicator.decide_button.text() == "1 action needs your decision…"
    dialog = indicator.open_review()
    qtbot.addWidget(dialog)
    assert dialog.rows[0].state is ActionState.CONFLICT
    assert "resolved" in dialog.table.item(0, 3).text()
    assert dialog.retry_button.isEnabled() and dialog.drop_button.isEnabled()
    dialog.drop_selected()
    assert dialog.rows == []
    stored = hub.store.alerts.get(alert.alert_id)
    assert stored.state is AlertState.RESOLVED and stored.resolved_by == ADMIN.user
    assert stored.acknowledged_by in (None, "")
    assert _acknowledgements(hub, alert.alert_id) == []
    window.close()
    context.close()
