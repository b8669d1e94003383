"""The console's outbox against the real REST API over HTTP (sign-in,
Idempotency-Key answers in a SQLite or PostgreSQL store), without the window:
what each answer a person can act on does to a queued change. Nothing queued
is lost: a network cut, a refused sign-in (401), throttling (429 with
Retry-After) keep it pending; a refusal (403) keeps it for a decision; a
restart reads it back; each is applied once."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core import secrets
from core.crypto.keystore import CodeSigningKeys
from core.model import Alert, AlertState, Device, Severity
from core.model.roles import Actor, Role
from core.ports.audit import AuditFilter
from core.ports.offline import ActionState
from core.store import Store
from core.store.preferences import SqlPreferenceStore
from plugins.api.app import RateLimit, make_handler
from plugins.api.auth import TokenSigner
from plugins.api.auth_service import build_sign_in
from plugins.api.client.outbox import COMMAND_FRESH_S, ActionQueued, backoff, describe
from plugins.api.client.remote import ApiSession
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
    store: Store
    services: Any
    rate: RateLimit


@pytest.fixture
def hub(store: Store, tmp_path: Path) -> Iterator[Hub]:  # noqa: F811
    store.registry.upsert(Device("pump-1", device_type="pump", organization="acme"))
    backend = dataclasses.replace(backend_over(store), accounts=store.accounts)
    services = build_api_services(backend, signing_keys=CodeSigningKeys(tmp_path / "codesign"),
                                  preferences=SqlPreferenceStore(store.engine))
    services.users.add_user(ADMIN, "sam", Role.SUPPORT, "acme", PASSWORD)
    tokens = TokenSigner.from_dir(tmp_path / "api")
    sign_in = build_sign_in(backend, tokens)
    rate = RateLimit(100_000)
    server = serve(ApiWsgiApp(make_handler(lambda: services, sign_in=lambda: sign_in,
                                           rate_limit=rate,
                                           idempotency=lambda: store.idempotency), tokens),
                   "127.0.0.1", 0)
    serve_in_thread(server)
    link = Link(server.server_port)
    try:
        yield Hub(link, store, services, rate)
    finally:
        link.cut()
        server.shutdown()
        server.server_close()


def _session(hub: Hub, tmp_path: Path) -> ApiSession:
    session = ApiSession(hub.link.url, data_dir=tmp_path / "console", timeout_s=5)
    assert session.outbox is not None
    session.outbox.base_s, session.outbox.cap_s = 0.1, 1.0  # fast backoff in tests
    return session


def _alert(hub: Hub) -> Alert:
    alert = Alert("pump-1", "rule-high", Severity.WARNING, "pressure high", 9.5)
    hub.store.alerts.add(alert)
    return alert


def _wait(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.05)


def _acks(hub: Hub, alert_id: str) -> int:
    return sum(1 for e in hub.store.audit.search(AuditFilter(action="alert.acknowledge",
                                                             subject=alert_id))
               if e.details.get("outcome", "ok") != "denied")


def test_a_change_made_offline_survives_a_restart_and_is_applied_once(
        hub: Hub, tmp_path: Path) -> None:
    alert = _alert(hub)
    session = _session(hub, tmp_path)
    session.sign_in("sam", PASSWORD)
    hub.link.cut()
    with pytest.raises(ActionQueued, match=r"^queued — Acknowledge alert .* is sent as soon"):
        session.api.alerts.acknowledge(alert.alert_id, "on it")
    work = session.offline_work()
    assert work is not None
    status = work.status()
    assert status.pending == 1 and status.oldest is not None
    assert "Waiting for" in status.problem
    session.close()  # the console quits
    outbox_file = tmp_path / "console" / "offline" / "outbox.sqlite3"
    assert outbox_file.stat().st_mode & 0o777 == 0o600  # the person's work, theirs alone

    again = _session(hub, tmp_path)
    assert again.outbox is not None
    assert [a.label for a in again.outbox.actions()] == [
        f"Acknowledge alert {alert.alert_id[:12]}…"]
    hub.link.restore()
    assert again.resume()
    work = again.offline_work()
    assert work is not None
    _wait(lambda: work.status().pending == 0)
    assert hub.store.alerts.get(alert.alert_id).state is AlertState.ACKNOWLEDGED
    assert _acks(hub, alert.alert_id) == 1
    again.close()


def test_a_refused_sign_in_keeps_the_change_until_the_person_signs_in_again(
        hub: Hub, tmp_path: Path) -> None:
    alert = _alert(hub)
    session = _session(hub, tmp_path)
    session.sign_in("sam", PASSWORD)
    work = session.offline_work()
    assert work is not None
    hub.link.cut()
    with pytest.raises(ActionQueued):
        session.api.alerts.resolve(alert.alert_id, "fixed")
    # While away, the person's sign-ins were ended on the server (password reset):
    # the access token expires and the refresh token is refused (401).
    hub.services.users.set_password(ADMIN, "sam", "a brand new secret 1")
    session.tokens._access = ""  # the access token ran out meanwhile
    hub.link.restore()
    _wait(lambda: work.status().problem.startswith("Sign in again"))
    assert work.status().pending == 1
    assert secrets.get_secret(refresh_secret_name(hub.link.url)) is None
    assert hub.store.alerts.get(alert.alert_id).state is AlertState.ACTIVE
    session.sign_in("sam", "a brand new secret 1")
    _wait(lambda: work.status().pending == 0)
    assert hub.store.alerts.get(alert.alert_id).state is AlertState.RESOLVED
    session.close()


def test_a_refusal_waits_for_the_person_s_decision(
        hub: Hub, tmp_path: Path) -> None:
    alert = _alert(hub)
    session = _session(hub, tmp_path)
    session.sign_in("sam", PASSWORD)
    work = session.offline_work()
    assert work is not None
    hub.link.cut()
    with pytest.raises(ActionQueued):
        session.api.alerts.acknowledge(alert.alert_id)
    # Meanwhile an admin disables sam's account: the server refuses (403).
    hub.services.users.set_disabled(ADMIN, "sam", True)
    hub.link.restore()
    _wait(lambda: work.status().needs_decision == 1)
    action = work.actions()[0]
    assert action.state is ActionState.REFUSED and "disabled" in action.message
    assert hub.store.alerts.get(alert.alert_id).state is AlertState.ACTIVE
    work.drop(action.action_id)
    assert work.actions() == []
    session.close()


def test_throttled_changes_wait_for_the_server_s_retry_after(hub: Hub, tmp_path: Path) -> None:
    alert = _alert(hub)
    session = _session(hub, tmp_path)
    session.sign_in("sam", PASSWORD)
    work = session.offline_work()
    assert work is not None
    hub.rate.per_minute = 30  # two seconds a request once the bucket is empty
    hub.rate._buckets["sam"] = (0.0, time.monotonic())  # sam just used them up
    with pytest.raises(ActionQueued, match="slow down"):
        session.api.alerts.acknowledge(alert.alert_id)
    assert work.status().pending == 1
    started = time.monotonic()
    _wait(lambda: work.status().pending == 0)
    assert time.monotonic() - started >= 1.0  # waited for Retry-After (2 s), not 0.1 s
    assert _acks(hub, alert.alert_id) == 1


def test_backoff_doubles_up_to_the_cap_and_is_half_random() -> None:
    for attempt, full in ((1, 1.0), (2, 2.0), (3, 4.0), (7, 60.0), (30, 60.0)):
        waits = [backoff(attempt) for _ in range(200)]
        assert all(full / 2 <= w <= full for w in waits)
        assert max(waits) - min(waits) > full / 10  # jittered


def test_a_device_command_that_waited_too_long_is_not_sent_on_its_own(
        hub: Hub, tmp_path: Path) -> None:
    session = _session(hub, tmp_path)
    session.sign_in("sam", PASSWORD)
    outbox = session.outbox
    assert outbox is not None
    hub.link.cut()
    with pytest.raises(ActionQueued, match="Reboot pump-1"):
        session.api.devices.command("pump-1", "reboot")
    later = time.time() + COMMAND_FRESH_S + 60
    outbox._clock = lambda: later  # eleven minutes pass offline
    hub.link.restore()
    outbox.start()
    _wait(lambda: outbox.status().needs_decision == 1)
    action = outbox.actions()[0]
    assert action.state is ActionState.REFUSED
    assert action.message.startswith("not sent: it waited 11 min")
    assert hub.link.forwarded_paths.count("/devices/pump-1/commands") == 0
    # The person decides to send it now: it goes (this server has no command
    # channel and refuses it, which is again the person's to see).
    outbox.retry(action.action_id)
    _wait(lambda: hub.link.forwarded_paths.count("/devices/pump-1/commands") == 1)
    _wait(lambda: outbox.actions()[0].state is ActionState.REFUSED
          and not outbox.actions()[0].message.startswith("not sent"))
    session.close()


def test_changes_are_named_in_the_person_s_words() -> None:
    assert describe("POST", "/alerts/3f2a9c1d77e04b6f/acknowledge", {}) == \
        "Acknowledge alert 3f2a9c1d77e0…"
    assert describe("POST", "/devices/pump-1/commands", {"command": "reboot"}) == "Reboot pump-1"
    assert describe("PUT", "/devices/pump-1/shadow", {}) == "Desired state of pump-1"
    assert describe("PUT", "/devices/pump-1", {}) == "Edit device pump-1"
    assert describe("POST", "/firmware/deployments/d-1/pause", None) == "Pause deployment d-1"
