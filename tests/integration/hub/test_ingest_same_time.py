"""Two messages of one device dated the same millisecond: the store keeps one
reading per device, metric and time, so the second used to be counted received
and silently not stored. A device whose clock has whole seconds and sends twice
a second lost every other reading that way. Now the second is quarantined as
``same_time`` with its payload, counted, and named; the first is stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from core.ingest.ingestor import Inbound, Ingestor
from core.ingest.registry_cache import RegistryCache
from core.store import Store

T0 = 1_795_000_000_000  # a whole second, epoch ms


def message(seq: int, ts: int, **metrics: float) -> Inbound:
    body = {"device_id": "p1", "seq": seq, "ts": ts, "type": "pump",
            "metrics": metrics or {"temperature": 20.0 + seq}}
    return Inbound("dt/acme/p1/telemetry", json.dumps(body).encode(), ts)


def _stored(store: Store, metric: str) -> list[float]:
    series = store.telemetry.query("p1", metric, datetime(2020, 1, 1, tzinfo=UTC),
                                   datetime(2100, 1, 1, tzinfo=UTC))
    return sorted(series.value.tolist())


def test_a_whole_second_clock_at_two_hertz_gets_every_other_reading_quarantined(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        ingestor = Ingestor(RegistryCache(store.registry))
        # seq 0..5 at 2 Hz, dated to the second: 0 and 1 share a time, 2 and 3, 4 and 5;
        # the first batch ends between the two messages of one second
        sent = [message(seq, T0 + 1000 * (seq // 2)) for seq in range(6)]
        results = [ingestor.process(sent[:3], T0 + 1_000), ingestor.process(sent[3:], T0 + 3_000)]
        for result in results:
            store.telemetry.write_batch(result.readings)
        quarantined = [q for r in results for q in r.quarantined]

        assert [q.reason for q in quarantined] == ["same_time"] * 3
        assert [json.loads(q.payload)["seq"] for q in quarantined] == [1, 3, 5]
        assert "seq 3 is dated 2026-11-18T" in quarantined[1].detail
        assert "the temperature reading already stored" in quarantined[1].detail
        # what was accepted is all in the store: nothing counted and silently dropped
        assert _stored(store, "temperature") == [20.0, 22.0, 24.0]
        stats = ingestor.stats["p1"]
        assert (stats.received, stats.lost, stats.duplicates) == (6, 0, 0)
        assert ingestor.rejected_by_reason == {"same_time": 3}
    finally:
        store.close()


def test_messages_of_one_time_with_different_metrics_are_all_stored(tmp_path):
    """A device that sends each metric in a message of its own, all read at once."""
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        ingestor = Ingestor(RegistryCache(store.registry))
        result = ingestor.process([message(0, T0, temperature=21.0),
                                   message(1, T0, humidity=40.0),
                                   message(2, T0, temperature=22.0, pressure=1.0),
                                   message(3, T0 + 1000, temperature=23.0)], T0 + 1_000)
        store.telemetry.write_batch(result.readings)
        assert [q.reason for q in result.quarantined] == ["same_time"]
        assert "seq 2" in result.quarantined[0].detail
        assert _stored(store, "temperature") == [21.0, 23.0]
        assert _stored(store, "humidity") == [40.0]
        assert _stored(store, "pressure") == []  # its message was quarantined whole
    finally:
        store.close()
