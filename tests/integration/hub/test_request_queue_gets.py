"""A device asking for its shadow several times before the hub gets to it (its
retries while the request queue waited) is answered once per get, each with its
own clientToken as IoT Core does, from one read; and a get that finds the request
queue full is shed and counted by reason (the device asks again, with backoff)
rather than holding the network thread for room. Real SQLite store, the hub's
own drain and network-thread entry point, replies collected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.ingest.ingestor import Inbound
from core.ports.shadows import ShadowDocument
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.hub import Hub

NOW = 1_800_000_000.0


def _hub(tmp_path: Path) -> tuple[Hub, Store, list[tuple[str, Any]], dict[str, int]]:
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    store.shadows.save(ShadowDocument("env-00001", {"interval": 5}, {"interval": 1}, 3),
                       expected_version=None)
    hub = Hub(store, EventBus(), "127.0.0.1", 1, receiver="thread", clock=lambda: NOW)
    replies: list[tuple[str, Any]] = []
    hub.shadows._publish = lambda topic, body: replies.append((topic, json.loads(body)))
    reads = {"single": 0, "batch": 0, "ids": 0}
    single, many = hub.shadows._store.get, hub.shadows._get_many
    assert many is not None

    def counted_single(thing: str) -> Any:
        reads["single"] += 1
        return single(thing)

    def counted_many(things: Any) -> Any:
        reads["batch"] += 1
        reads["ids"] += len(things)
        return many(things)

    hub.shadows._store.get = counted_single  # type: ignore[method-assign,assignment]
    hub.shadows._get_many = counted_many
    return hub, store, replies, reads


def test_three_gets_from_one_device_in_one_drain_three_replies_one_read(tmp_path: Path) -> None:
    hub, store, replies, reads = _hub(tmp_path)
    try:
        topic = "$aws/things/env-00001/shadow/get"
        hub._shadow_inbox.extend(
            (Inbound(topic, json.dumps({"clientToken": f"t{i}"}).encode(), 0), None)
            for i in range(3))
        hub._drain_requests()
        assert [t for t, _ in replies] == [topic + "/accepted"] * 3
        assert [b["clientToken"] for _, b in replies] == ["t0", "t1", "t2"]
        assert all(b["state"]["delta"] == {"interval": 5} and b["version"] == 3
                   for _, b in replies)
        assert reads == {"single": 0, "batch": 1, "ids": 1}
        assert hub.shadows.answered["get"] == 3
    finally:
        store.close()


def test_a_get_finding_the_request_queue_full_is_shed_and_counted(tmp_path: Path) -> None:
    hub, store, _replies, _reads = _hub(tmp_path)
    try:
        hub.inbox_limit = 2
        update = ("$aws/things/env-00001/shadow/update", b'{"state":{"reported":{"a":1}}}')
        hub._on_message(*update)
        hub._on_message(*update)
        hub._on_message("$aws/things/env-00001/shadow/get", b'{"clientToken":"late"}')
        hub._on_message("$aws/things/env-00002/shadow/get", b'{"clientToken":"late"}')
        assert len(hub._shadow_inbox) == 2  # the queue holds its bound
        assert hub.counters.shed_requests == {"shadow_get_queue_full": 2}
        assert hub.counters.shed_overload == 0  # not mixed with telemetry's shedding
        assert "2 requests shed (shadow_get_queue_full)" in " ".join(hub.problems())
    finally:
        store.close()
