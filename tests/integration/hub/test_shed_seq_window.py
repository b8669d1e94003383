"""The hub tells its seq accounting which seqs it dropped itself: QoS 0
telemetry it shed because its inbox was full. Those count as lost but are not
awaited as possibly late (they were received), so a fleet shed for minutes does
not fill every device's window (8 KB each: the overload's memory that kept
growing, docs/benchmarks.md). The rest of a gap, lost on the way, is awaited.
Real SQLite store; the hub's own network-thread entry point and writer drain."""

from __future__ import annotations

import json
from pathlib import Path

from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.hub import Hub

NOW = 1_800_000_000.0
TOPIC = "dt/acme/env-1/telemetry"


def _payload(seq: int, device: str = "env-1") -> bytes:
    return json.dumps({"device_id": device, "seq": seq, "ts": int(NOW * 1000) + seq * 100,
                       "metrics": {"temperature": 20.0 + seq / 100}}).encode()


def test_what_the_hub_shed_is_lost_not_awaited_and_a_loss_on_the_way_still_is(
        tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    hub = Hub(store, EventBus(), "127.0.0.1", 1, receiver="thread", clock=lambda: NOW,
              inbox_limit=10)
    try:
        for seq in range(30):  # 0..9 fit, 10..29 are shed
            hub._on_message(TOPIC, _payload(seq))
        assert hub.counters.shed_overload == 20
        hub._drain_telemetry()
        hub._on_message(TOPIC, _payload(30))  # the next one kept
        hub._drain_telemetry()
        boot = hub.ingestor.sequences._devices["env-1"].boot
        assert len(boot.missing) == 0
        assert hub.ingestor.stats["env-1"].lost == 20
        # seq 31 lost on the way (never reached the hub), 32 kept: awaited
        hub._on_message(TOPIC, _payload(32))
        hub._drain_telemetry()
        assert list(boot.missing) == [31]
        hub._on_message(TOPIC, _payload(31))  # it arrives late: stored
        hub._drain_telemetry()
        assert hub.ingestor.stats["env-1"].lost == 20
        assert hub.counters.readings_written == 10 + 3  # 0..9, 30, 32, 31
        # the inbox full again, with 33 and another device's messages; 35 shed,
        # 34 lost on the way: of the gap before 36 only 34 is awaited
        hub._on_message(TOPIC, _payload(33))
        for seq in range(9):
            hub._on_message("dt/acme/env-2/telemetry", _payload(seq, "env-2"))
        hub._on_message(TOPIC, _payload(35))
        assert hub.counters.shed_overload == 21
        hub._drain_telemetry()
        hub._on_message(TOPIC, _payload(36))
        hub._drain_telemetry()
        assert list(boot.missing) == [34]
        assert hub.ingestor.stats["env-1"].lost == 22
        assert hub.counters.readings_written == 13 + 9 + 2  # env-2's nine, 33 and 36
    finally:
        hub.stop(timeout_s=5)
        store.close()
