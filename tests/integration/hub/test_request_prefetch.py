"""The hub's request drain reads the shadows and pending jobs of many asking
devices in one query; the answers must be exactly those of each request
reading for itself, and a deployment another process creates or cancels must
reach the next device that asks.

Real SQLite and, when SMARTIOT_TEST_PG_URL is set, PostgreSQL (a throw-away
schema per store); the hub's own ``_drain_requests`` with its replies
collected (no broker needed: what is tested is what is answered)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from core.ingest.ingestor import Inbound
from core.model import Deployment
from core.ports.shadows import ShadowDocument
from core.services.event_bus import EventBus
from core.store import Store, create_store_engine
from plugins.local.hub import hub as hub_module
from plugins.local.hub.hub import Hub

PG_ENV = "SMARTIOT_TEST_PG_URL"
ROOT = Path(__file__).resolve().parents[3]
NOW = 1_800_000_000.0
# Keys whose values are times taken when rows were written (differ between two
# seeded databases by a second at most); everything else must match exactly.
_TIMES = {"timestamp", "queuedAt", "startedAt", "lastUpdatedAt"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[
    pytest.mark.postgres,
    pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"{PG_ENV} not set")])])
def open_db(request: pytest.FixtureRequest,
            tmp_path: Path) -> Iterator[Callable[[], tuple[Store, str, dict[str, Any]]]]:
    """Opens a new, empty database each call: (store, url, connect_args)."""
    opened: list[Store] = []
    schemas: list[str] = []
    admin = create_store_engine(os.environ[PG_ENV]) if request.param == "postgresql" else None

    def _open() -> tuple[Store, str, dict[str, Any]]:
        if admin is None:
            url, args = f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}", {}
        else:
            schema = f"t_{uuid.uuid4().hex[:16]}"
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            schemas.append(schema)
            url, args = os.environ[PG_ENV], {"options": f"-csearch_path={schema}"}
        store = Store.open(url, connect_args=args)
        opened.append(store)
        return store, url, args

    yield _open
    for store in opened:
        store.close()
    if admin is not None:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _seed(store: Store, things: list[str]) -> None:
    for i, thing in enumerate(things):
        if i % 2 == 0:
            store.shadows.save(ShadowDocument(thing, {"interval": 5, "led": {"on": True}},
                                              {"interval": 1 if i % 4 else 5}, 3),
                               expected_version=None)
    job_targets = things[::5]
    store.deployments.create(Deployment(deployment_id="ota-a", firmware_id="pump:2.0.0",
                                        targets=tuple(job_targets),
                                        document={"operation": "ota", "v": 1}))
    store.deployments.release("ota-a", job_targets)
    second = things[::10]
    store.deployments.create(Deployment(deployment_id="ota-b", firmware_id="pump:2.1.0",
                                        targets=tuple(second), document={"operation": "b"}))
    store.deployments.release("ota-b", second)


def _storm(things: list[str]) -> list[tuple[str, bytes]]:
    """What connecting devices ask, with the awkward cases mixed in: several
    requests of one device in one drain (start-next then get: the second must
    see the first's change), updates with and without a version, a bad client
    token, a delete, a shadow that does not exist, describe of $next."""
    out: list[tuple[str, bytes]] = []
    for i, thing in enumerate(things):
        base = f"$aws/things/{thing}"
        out.append((f"{base}/shadow/get", json.dumps({"clientToken": f"g{i}"}).encode()))
        out.append((f"{base}/jobs/start-next", json.dumps({"clientToken": f"s{i}"}).encode()))
        out.append((f"{base}/jobs/get", b"{}"))
        out.append((f"{base}/jobs/$next/get", b'{"includeJobDocument": true}'))
        body: dict[str, Any] = {"state": {"reported": {"interval": i % 3}}, "clientToken": f"u{i}"}
        if i % 3 == 0:
            body["version"] = 3
        out.append((f"{base}/shadow/update", json.dumps(body).encode()))
        if i % 7 == 0:
            out.append((f"{base}/shadow/get", b'{"clientToken": 12}'))
        if i % 11 == 0:
            out.append((f"{base}/shadow/delete", b"{}"))
        out.append((f"{base}/shadow/get", b"{}"))
    return out


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _TIMES}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


class Drainer:
    """The hub's request drain on a store, replies collected in order."""

    def __init__(self, store: Store, *, batched: bool) -> None:
        self.hub = Hub(store, EventBus(), "127.0.0.1", 1, receiver="thread", clock=lambda: NOW)
        self.replies: list[tuple[str, Any]] = []
        self.hub.shadows._publish = self.hub.jobs._publish = self._collect
        self.reads = 0
        if not batched:
            self.hub.jobs._pending_many = None
            self.hub.shadows._get_many = None
        single = store.deployments.for_device
        single_shadow = store.shadows.get

        def counted(*args: Any, **kw: Any) -> Any:
            self.reads += 1
            return single(*args, **kw)

        def counted_shadow(*args: Any, **kw: Any) -> Any:
            self.reads += 1
            return single_shadow(*args, **kw)

        self.hub.jobs._deployments.for_device = counted  # type: ignore[method-assign]
        self.hub.shadows._store.get = counted_shadow  # type: ignore[method-assign]

    def _collect(self, topic: str, body: bytes) -> None:
        self.replies.append((topic, json.loads(body)))

    def drain(self, requests: list[tuple[str, bytes]]) -> list[tuple[str, Any]]:
        start = len(self.replies)
        self.hub._shadow_inbox.extend((Inbound(t, p, 0), None) for t, p in requests)
        while self.hub._shadow_inbox:
            self.hub._drain_requests()
        return self.replies[start:]


def test_batched_drain_answers_exactly_as_each_request_reading_for_itself(open_db):
    things = [f"conn-{i:04d}" for i in range(1_200)]  # more than one prefetch chunk
    answers = []
    stored = []
    reads = []
    for batched in (False, True):
        store, _, _ = open_db()
        _seed(store, things)
        drainer = Drainer(store, batched=batched)
        answers.append([(t, _strip(b)) for t, b in drainer.drain(_storm(things))])
        reads.append(drainer.reads)
        stored.append(([(s.device_id, s.desired, s.reported, s.version) for s in
                        (store.shadows.get(t) for t in things) if s is not None],
                       [(e.deployment_id, e.device_id, e.status, e.version_number)
                        for d in ("ota-a", "ota-b") for e in store.deployments.executions(d)]))
    per_request, batched_answers = answers
    assert len(per_request) > 8_000
    assert batched_answers == per_request
    assert stored[1] == stored[0]
    # the batched drain read per request only what changed under it (its own
    # job starts, deletes, versioned updates), not every request
    assert reads[0] > 6_000
    assert reads[1] < reads[0] / 4


def _other_process(url: str, args: dict[str, Any], script: str) -> None:
    code = ("import json, sys\nfrom core.store import Store\nfrom core.model import Deployment\n"
            "store = Store.open(sys.argv[1], connect_args=json.loads(sys.argv[2]))\n"
            + script + "\nstore.close()\n")
    subprocess.run([sys.executable, "-c", code, url, json.dumps(args)], cwd=ROOT,
                   check=True, timeout=120)


def _next_job(replies: list[tuple[str, Any]], thing: str) -> str | None:
    body = next(b for t, b in replies if t == f"$aws/things/{thing}/jobs/start-next/accepted")
    execution = body.get("execution")
    return execution["jobId"] if execution else None


def test_a_deployment_created_or_cancelled_by_another_process_reaches_the_next_asker(open_db):
    store, url, args = open_db()
    things = [f"warm-{i:03d}" for i in range(300)]
    drainer = Drainer(store, batched=True)
    ask = [(f"$aws/things/{t}/jobs/start-next", b"{}") for t in things]
    # warm: everyone asked, nobody has a job
    assert all(_next_job(drainer.drain(ask), t) is None for t in things)

    _other_process(url, args, (
        "targets = ('warm-007', 'warm-250')\n"
        "store.deployments.create(Deployment(deployment_id='from-api', firmware_id='pump:3',"
        " targets=targets, document={'operation': 'ota'}))\n"
        "store.deployments.release('from-api', targets)\n"))
    replies = drainer.drain([(f"$aws/things/{t}/jobs/get", b"{}") for t in things])
    pending = {t: [j["jobId"] for j in b["queuedJobs"]] for t, b in
               ((t.split("/")[2], b) for t, b in replies if t.endswith("/get/accepted"))}
    assert pending["warm-007"] == ["from-api"] and pending["warm-250"] == ["from-api"]
    assert sum(1 for jobs in pending.values() if jobs) == 2

    _other_process(url, args, "store.deployments.cancel('from-api', reason='withdrawn')\n")
    replies = drainer.drain(ask)
    assert _next_job(replies, "warm-007") is None  # never the withdrawn job
    assert _next_job(replies, "warm-250") is None


def test_a_failed_batch_read_leaves_each_request_to_read_for_itself(open_db, monkeypatch):
    store, _, _ = open_db()
    things = [f"fb-{i:03d}" for i in range(50)]
    _seed(store, things)
    expected = Drainer(store, batched=False).drain(_storm(things)[:0])  # nothing yet

    def broken(ids: Any) -> Any:
        raise RuntimeError("batch read failed")

    drainer = Drainer(store, batched=True)
    drainer.hub.jobs._pending_many = broken
    drainer.hub.shadows._get_many = broken
    monkeypatch.setattr(hub_module, "PREFETCH_REQUESTS", 10)
    replies = drainer.drain([(f"$aws/things/{t}/jobs/get", b"{}") for t in things])
    assert expected == []
    queued = {t.split("/")[2]: [j["jobId"] for j in b["queuedJobs"]] for t, b in replies}
    assert queued["fb-000"] == ["ota-a", "ota-b"] and queued["fb-005"] == ["ota-a"]
    assert queued["fb-001"] == []
