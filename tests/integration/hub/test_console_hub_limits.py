"""A console's own hub shares the window's process and GIL, so it writes smaller
batches and keeps a smaller inbox than `smartiot hub` (plugins/local/hub/hub.py,
CONSOLE_BATCH_LIMIT): a 60,000-message batch's sort alone held the GIL for
183 ms, a frozen window. The hub's writer is driven step by step on a real
SQLite store; the backend is built on a real broker, as the console and
`smartiot hub` build it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from core.config import load_config
from core.context import AppContext
from core.model import Reading
from core.plugins import PluginManager
from core.protocol.topics import telemetry_topic
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.backend import build_local_backend
from plugins.local.hub.hub import (
    BATCH_LIMIT,
    CONSOLE_BATCH_LIMIT,
    CONSOLE_INBOX_LIMIT,
    INBOX_LIMIT,
    Hub,
)


def _telemetry(device: str, seq: int, ts_ms: int) -> bytes:
    return json.dumps({"device_id": device, "ts": ts_ms, "seq": seq,
                       "metrics": {"temperature": 20.5, "humidity": 40.0}}).encode()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'hub.db'}") as opened:
        yield opened


def test_a_transaction_takes_at_most_the_hubs_batch_limit(store: Store) -> None:
    hub = Hub(store, EventBus(), "127.0.0.1", 9, batch_limit=40)  # never started
    hub.cache.load()
    sizes: list[int] = []
    write = store.telemetry.write_batch

    def recorded(readings: Sequence[Reading]) -> int:
        sizes.append(len(readings))
        return write(readings)

    store.telemetry.write_batch = recorded  # type: ignore[method-assign]
    now_ms = int(hub.clock() * 1000)
    for i in range(100):
        hub._on_message(telemetry_topic("acme", f"dev-{i:03d}"),
                        _telemetry(f"dev-{i:03d}", 0, now_ms - 1000))
    while hub._inbox:
        hub._drain_telemetry()
    # 100 messages of 2 readings in transactions of at most 40 messages
    assert sizes == [80, 80, 40]
    assert hub.counters.readings_written == 200


def _backend(mosquitto_broker: Any, tmp_path: Path, run_hub: bool | None) -> Any:
    config = load_config(tmp_path / "config.toml", tmp_path / "data", env={})
    profile = dataclasses.replace(config.profile, broker=mosquitto_broker.url,
                                  demo_fleet=False)
    config = dataclasses.replace(config, profiles={**config.profiles, "local": profile})
    return build_local_backend(AppContext(config, PluginManager(entry_points=False,
                                                                blocked=())),
                               run_hub=run_hub)


def test_the_consoles_own_hub_takes_small_batches_and_smartiot_hub_large(
        mosquitto_broker: Any, tmp_path: Path) -> None:
    console = _backend(mosquitto_broker, tmp_path / "console", None)
    try:
        assert console.hub is not None
        assert (console.hub.batch_limit, console.hub.inbox_limit) == (
            CONSOLE_BATCH_LIMIT, CONSOLE_INBOX_LIMIT)
    finally:
        console.close()
    headless = _backend(mosquitto_broker, tmp_path / "hub", True)
    try:
        assert headless.hub is not None
        assert (headless.hub.batch_limit, headless.hub.inbox_limit) == (
            BATCH_LIMIT, INBOX_LIMIT)
        assert CONSOLE_BATCH_LIMIT < BATCH_LIMIT and CONSOLE_INBOX_LIMIT < INBOX_LIMIT
    finally:
        headless.close()
