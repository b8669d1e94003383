"""The hub hands the store its readings as the table rows it built (``RowBatch``;
a producer with ``Reading`` objects at hand may add their rows, ``ReadingBatch``):
what is stored must be exactly what the readings say, on SQLite and PostgreSQL,
and a ``ReadingBatch`` whose rows do not match its readings is not trusted."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from core.ingest.batch import ReadingBatch, RowBatch
from core.ingest.ingestor import Inbound, Ingestor
from core.ingest.registry_cache import RegistryCache
from core.model.timeutil import from_epoch_ms
from core.store import Store


def _message(device: str, seq: int, ts_ms: int, metrics: dict[str, float]) -> Inbound:
    body = {"device_id": device, "seq": seq, "ts": ts_ms, "type": "environmental",
            "fw": "1.0.0", "metrics": metrics, "uptime": 100 + seq}
    return Inbound(f"dt/demo/{device}/telemetry", json.dumps(body).encode(), ts_ms)


def test_the_hubs_rows_store_what_its_readings_say(store: Store) -> None:
    now = int(time.time() * 1000)
    cache = RegistryCache(store.registry)
    cache.load()
    ingestor = Ingestor(cache)
    batch = [_message(f"d-{i % 3}", i // 3, now - 5000 + i, {"t": 0.1 * i + 1 / 3, "h": -2.5})
             for i in range(12)]
    result = ingestor.process(batch, now)
    readings = result.readings
    assert type(readings) is RowBatch and len(readings.rows) == len(readings) == 24
    assert readings.rows == [(r.device_id, r.metric, round(r.ts.timestamp() * 1000), r.value)
                             for r in readings]
    assert store.telemetry.write_batch(readings) == 24
    start = from_epoch_ms(now - 6000)
    series = store.telemetry.query("d-1", "t", start, start + timedelta(seconds=2))
    want = [r for r in readings if r.device_id == "d-1" and r.metric == "t"]
    assert series.value.tolist() == [r.value for r in want]
    assert series.ts_ms.tolist() == [round(r.ts.timestamp() * 1000) for r in want]


def test_rows_that_do_not_match_the_readings_are_rebuilt(store: Store) -> None:
    now = int(time.time() * 1000)
    cache = RegistryCache(store.registry)
    cache.load()
    result = Ingestor(cache).process([_message("d-9", 1, now - 1000, {"t": 4.0, "h": 5.0})],
                                     now)
    readings = ReadingBatch()
    readings.extend(result.readings)
    readings.rows.extend(result.readings.rows)
    readings.rows.pop()  # a producer that got its rows wrong
    assert store.telemetry.write_batch(readings) == 2
    latest = store.telemetry.latest_values(["t", "h"])
    assert latest["d-9"] == {"t": 4.0, "h": 5.0}
