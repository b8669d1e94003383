"""Idempotency-Key over real HTTP, on SQLite and PostgreSQL: a change sent
twice with one key runs once and the retry gets the stored answer; the same key
with another request is refused 422 naming it; a retry while the first still
runs is told to come back (409 + Retry-After); simultaneous duplicates run
once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.crypto.keystore import CodeSigningKeys
from core.model import Alert, Severity
from core.model.roles import Role
from core.model.timeutil import utcnow
from core.ports.idempotency import IdempotencyRecord
from core.store import Store
from core.store.preferences import SqlPreferenceStore
from core.store.schema import idempotency_keys
from plugins.api.app import make_handler
from plugins.api.auth import TokenSigner
from plugins.api.idempotency import IdempotencyGate, body_hash
from plugins.api.wiring import build_api_services
from plugins.api.wsgi import ApiWsgiApp, serve, serve_in_thread
from tests.integration.api.conftest import Api, Client, Reply, backend_over

pytestmark = pytest.mark.postgres


@pytest.fixture
def api(store: Store, tmp_path: Path) -> Iterator[Api]:
    backend = backend_over(store)
    services = build_api_services(backend, signing_keys=CodeSigningKeys(tmp_path / "codesign"),
                                  preferences=SqlPreferenceStore(store.engine))
    tokens = TokenSigner.from_dir(tmp_path / "api")
    server = serve(ApiWsgiApp(make_handler(lambda: services,
                                           idempotency=lambda: store.idempotency), tokens),
                   "127.0.0.1", 0)
    serve_in_thread(server)
    try:
        yield Api(Client(f"http://127.0.0.1:{server.server_port}", tokens), store, backend)
    finally:
        server.shutdown()
        server.server_close()


def _alert(api: Api) -> str:
    reply = api.client.call("POST", "/devices", {"device_id": "pump-1", "device_type": "pump"})
    assert reply.status == 201, reply.body
    alert = Alert("pump-1", "rule-high", Severity.WARNING, "pressure high", 9.5)
    api.store.alerts.add(alert)
    return alert.alert_id


def _ack(api: Api, alert_id: str, key: str, comment: str = "on it") -> Reply:
    return api.client.call("POST", f"/alerts/{alert_id}/acknowledge", {"comment": comment},
                           role=Role.SUPPORT, user="sam", headers={"Idempotency-Key": key})


def _acknowledgements(api: Api, alert_id: str) -> int:
    listed = api.client.call("GET", f"/audit?action=alert.acknowledge&target={alert_id}")
    return sum(1 for e in listed.data["items"] if not e.get("denied"))


def test_a_retry_with_the_same_key_gets_the_first_answer_and_runs_nothing(api: Api) -> None:
    alert_id = _alert(api)
    first = _ack(api, alert_id, "k-1")
    assert first.status == 200 and first.data["acknowledged_by"] == "sam"
    again = _ack(api, alert_id, "k-1")
    # Without the key the second acknowledge is a 409 (already acknowledged).
    assert again.status == 200, again.body
    assert again.body == first.body
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert _acknowledgements(api, alert_id) == 1
    stored = api.store.idempotency.get("sam", "k-1")
    assert stored is not None and stored.status == 200
    assert stored.request == f"POST /alerts/{alert_id}/acknowledge"
    assert stored.expires_at - stored.created_at == timedelta(hours=24)
    # Another key is another change: the lifecycle refuses it as before.
    assert _ack(api, alert_id, "k-2").status == 409


def test_the_same_key_for_another_request_is_refused_naming_the_key(api: Api) -> None:
    alert_id = _alert(api)
    assert _ack(api, alert_id, "k-1").status == 200
    other_body = _ack(api, alert_id, "k-1", comment="something else")
    assert other_body.status == 422
    assert other_body.error["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert "'k-1'" in other_body.error["message"]
    other_route = api.client.call("POST", f"/alerts/{alert_id}/resolve",
                                  {"comment": "on it"}, role=Role.SUPPORT, user="sam",
                                  headers={"Idempotency-Key": "k-1"})
    assert other_route.status == 422
    assert f"POST /alerts/{alert_id}/acknowledge" in other_route.error["message"]
    assert api.store.alerts.get(alert_id).state.value == "acknowledged"  # not resolved
    # A key is one person's: someone else's request with it is their own change.
    mine = api.client.call("POST", f"/alerts/{alert_id}/resolve", {}, role=Role.SUPPORT,
                           user="ana", headers={"Idempotency-Key": "k-1"})
    assert mine.status == 200 and mine.data["state"] == "resolved"


def test_a_retry_while_the_first_still_runs_is_told_to_come_back(api: Api) -> None:
    alert_id = _alert(api)
    path = f"/alerts/{alert_id}/acknowledge"
    now = utcnow()
    # The first request holds the key on another server (or this one, still running).
    running = IdempotencyRecord(caller="sam", key="k-1", request=f"POST {path}",
                                body_hash=body_hash({"body": '{"comment": "on it"}'}),
                                created_at=now, expires_at=now + timedelta(hours=24),
                                locked_until=now + timedelta(minutes=5))
    assert api.store.idempotency.claim(running, now) is None
    busy = _ack(api, alert_id, "k-1")
    assert busy.status == 409 and busy.error["code"] == "IDEMPOTENCY_IN_PROGRESS"
    assert busy.headers.get("Retry-After") == "2"
    assert api.store.alerts.get(alert_id).state.value == "active"
    # A claim whose request died (its lease ran out) is taken over by the retry.
    with api.store.engine.begin() as conn:
        conn.execute(idempotency_keys.update().values(locked_until=now - timedelta(seconds=1)))
    assert _ack(api, alert_id, "k-1").status == 200
    assert _acknowledgements(api, alert_id) == 1


def test_simultaneous_duplicates_run_once(api: Api) -> None:
    alert_id = _alert(api)
    replies: list[Reply] = []
    start = threading.Barrier(8)

    def send() -> None:
        start.wait()
        replies.append(_ack(api, alert_id, "k-same"))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(replies) == 8
    codes = sorted({r.status for r in replies})
    assert set(codes) <= {200, 409}, [r.body for r in replies]
    busy = [r for r in replies if r.status == 409]
    assert all(r.error["code"] == "IDEMPOTENCY_IN_PROGRESS" for r in busy)
    assert any(r.status == 200 for r in replies)
    assert _acknowledgements(api, alert_id) == 1
    # After the first finished, every retry gets its answer.
    assert _ack(api, alert_id, "k-same").status == 200


def test_faults_and_refusals_are_not_kept_and_auth_is_left_out(api: Api) -> None:
    alert_id = _alert(api)
    denied = api.client.call("POST", f"/alerts/{alert_id}/acknowledge", {},
                             role=Role.SUPPORT, user="sam",
                             headers={"Idempotency-Key": "x" * 300})
    assert denied.status == 400 and "Idempotency-Key" in denied.error["message"]
    no_token = api.client.call("POST", f"/alerts/{alert_id}/acknowledge", {}, role=None,
                               headers={"Idempotency-Key": "k-9"})
    assert no_token.status == 401
    assert api.store.idempotency.get("", "k-9") is None
    # Reads are never gated: the same key on a GET is ignored.
    got = api.client.call("GET", f"/alerts/{alert_id}", role=Role.SUPPORT, user="sam",
                          headers={"Idempotency-Key": "k-1"})
    assert got.status == 200 and api.store.idempotency.get("sam", "k-1") is None


def test_an_expired_answer_frees_its_key_and_is_purged(api: Api) -> None:
    alert_id = _alert(api)
    assert _ack(api, alert_id, "k-1").status == 200
    later = utcnow() + timedelta(hours=25)
    fresh = IdempotencyRecord(caller="sam", key="k-1", request="POST /devices/pump-1",
                              body_hash="0" * 64, created_at=later,
                              expires_at=later + timedelta(hours=24),
                              locked_until=later + timedelta(minutes=5))
    # A day later the key is free again, for any request.
    assert api.store.idempotency.claim(fresh, later) is None
    assert api.store.idempotency.get("sam", "k-1") == fresh
    assert api.store.idempotency.purge(later + timedelta(hours=48)) == 1
    assert api.store.idempotency.get("sam", "k-1") is None


def test_an_answer_too_big_to_keep_still_tells_a_retry_it_was_applied(store: Store) -> None:
    gate = IdempotencyGate(lambda: store.idempotency)
    event = {"httpMethod": "POST", "path": "/alerts/rules/import", "body": '{"rules": []}',
             "headers": {"Idempotency-Key": "big-1"},
             "requestContext": {"authorizer": {"claims": {"cognito:username": "ada"}}}}
    runs: list[int] = []

    def resolve(_event: dict[str, Any]) -> dict[str, Any]:
        runs.append(1)
        return {"statusCode": 200, "headers": {}, "isBase64Encoded": False,
                "body": json.dumps({"success": True, "data": "x" * 400_000})}

    first = gate(event, resolve)
    assert len(first["body"]) > 400_000
    again = gate(event, resolve)
    assert runs == [1]
    assert again["statusCode"] == 200 and again["headers"]["Idempotent-Replayed"] == "true"
    assert "too large to keep" in json.loads(again["body"])["note"]
