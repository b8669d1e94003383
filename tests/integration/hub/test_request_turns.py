"""Shadow and jobs requests take turns with telemetry on the hub's writer: a
fleet connecting at once (each device asking for its shadow and its jobs) no
longer keeps every reading waiting until the last request is answered, and the
requests still all get their answer.

The hub's own writer stages on a real SQLite store, driven step by step (the
link is not connected: no broker decides the timing here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from core.protocol.topics import telemetry_topic
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub import hub as hub_module
from plugins.local.hub.hub import Hub


def _telemetry(device: str, seq: int, ts_ms: int) -> bytes:
    return json.dumps({"device_id": device, "ts": ts_ms, "seq": seq,
                       "metrics": {"temperature": 20.5, "humidity": 40.0}}).encode()


@pytest.fixture
def offline_hub(tmp_path: Path):
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    hub = Hub(store, EventBus(), "127.0.0.1", 9)  # never started: no broker
    answers: list[str] = []
    hub.link.publish = lambda topic, body, **kw: answers.append(topic)  # type: ignore[method-assign]
    hub.shadows._publish = lambda topic, body: answers.append(topic)
    hub.cache.load()
    yield hub, store, answers
    store.close()


def test_requests_and_telemetry_take_turns(offline_hub, monkeypatch) -> None:
    hub, store, answers = offline_hub
    monkeypatch.setattr(hub_module, "REQUESTS_SLICE_S", 0.0)  # a turn is one request
    hub.batch_limit = 50
    now_ms = int(hub.clock() * 1000)
    for i in range(200):
        hub._on_message(f"$aws/things/dev-{i:03d}/shadow/get", b"{}")
    for seq in range(3):
        for i in range(100):
            hub._on_message(telemetry_topic("acme", f"dev-{i:03d}"),
                            _telemetry(f"dev-{i:03d}", seq, now_ms - 3000 + seq * 1000))
    hub._drain_requests()
    assert len(hub._shadow_inbox) == 199  # one turn, then telemetry's
    hub._drain_telemetry()
    assert hub.counters.processed == 50  # one batch, then the requests' turn again
    assert hub.counters.readings_written == 100
    # the loop keeps alternating until both are done; nothing is dropped
    turns = 0
    while hub._shadow_inbox or hub._inbox:
        hub._drain_requests()
        hub._drain_telemetry()
        turns += 1
    assert turns == 6  # 300 messages in batches of 50 took 6 turns, requests between
    assert hub.counters.readings_written == 600
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM telemetry")).scalar_one() == 600
    assert sum(t.endswith("/shadow/get/rejected") for t in answers) == 200  # no shadow yet


def test_requests_alone_are_answered_in_one_go(offline_hub) -> None:
    hub, _store, answers = offline_hub
    for i in range(300):
        hub._on_message(f"$aws/things/dev-{i:03d}/shadow/get", b"{}")
    hub._drain_requests()  # no telemetry waiting: no turns to take
    assert not hub._shadow_inbox
    assert len(answers) == 300
