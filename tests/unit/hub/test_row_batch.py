"""The ingest's batch holds table rows only (``RowBatch``); a ``Reading`` is made
for whoever iterates. Iterated, it must give exactly the readings the ingest
used to build per message, and with live events off the ingest's rows and
samples must not change."""

from __future__ import annotations

import json

import pytest

from core.ingest.batch import RowBatch
from core.ingest.ingestor import Inbound, Ingestor
from core.ingest.registry_cache import RegistryCache
from core.model import Reading
from core.model.events import TelemetryReceived
from core.model.timeutil import from_epoch_ms

T0 = 1_795_000_000_123


class NoRegistry:
    """Ingest without a database: no device is known beforehand."""

    def get(self, device_id):
        return None

    def find(self, device_id):
        return None

    def get_many(self, device_ids):
        return {}


def _message(device: str, seq: int, ts: int, **metrics: float) -> Inbound:
    body = {"device_id": device, "seq": seq, "ts": ts, "type": "pump", "fw": "2.0.0",
            "metrics": metrics}
    return Inbound(f"dt/acme/{device}/telemetry", json.dumps(body).encode(), ts)


def _batch() -> list[Inbound]:
    return [_message("a", 0, T0, t=1.5, h=40.0), _message("b", 0, T0 + 1, t=-2.0),
            _message("a", 1, T0 + 1000, t=1.75, h=41.0), _message("b", 1, T0 + 1001, t=-2.5)]


def test_iterating_gives_the_readings_each_message_said():
    result = Ingestor(RegistryCache(NoRegistry())).process(_batch(), T0 + 2000)
    readings = result.readings
    assert isinstance(readings, RowBatch) and len(readings) == 6 and readings
    # validated construction (Reading's own checks) gives equal objects
    want = [Reading("a", "t", from_epoch_ms(T0), 1.5), Reading("a", "h", from_epoch_ms(T0), 40.0),
            Reading("b", "t", from_epoch_ms(T0 + 1), -2.0),
            Reading("a", "t", from_epoch_ms(T0 + 1000), 1.75),
            Reading("a", "h", from_epoch_ms(T0 + 1000), 41.0),
            Reading("b", "t", from_epoch_ms(T0 + 1001), -2.5)]
    assert list(readings) == want and readings == want and readings == tuple(want)
    assert readings != want[:5] and readings != [*want[:5], want[0]] and RowBatch() == []
    assert readings == RowBatch(list(readings.rows)) and readings != RowBatch()
    assert [readings[i] for i in range(6)] == want and readings[-1] == want[-1]
    assert list(readings[1:3]) == want[1:3] and isinstance(readings[1:3], RowBatch)
    assert readings.rows == [(r.device_id, r.metric, round(r.ts.timestamp() * 1000), r.value)
                             for r in want]
    # each device's readings in arrival order, for evaluators that take Readings
    assert result.by_device == {"a": [want[0], want[1], want[3], want[4]],
                                "b": [want[2], want[5]]}
    with pytest.raises(IndexError):
        readings[6]


def test_without_live_events_the_rows_and_samples_are_the_same():
    live = Ingestor(RegistryCache(NoRegistry())).process(_batch(), T0 + 2000)
    quiet_ingestor = Ingestor(RegistryCache(NoRegistry()))
    quiet_ingestor.live_events = False
    quiet = quiet_ingestor.process(_batch(), T0 + 2000)
    assert quiet.readings.rows == live.readings.rows
    assert quiet.samples == live.samples
    assert [e for e in quiet.events if isinstance(e, TelemetryReceived)] == []
    told = [e for e in live.events if isinstance(e, TelemetryReceived)]
    assert [(e.device_id, e.seq, len(e.readings)) for e in told] == [
        ("a", 0, 2), ("b", 0, 1), ("a", 1, 2), ("b", 1, 1)]
    # the rest (a device's first word, its registration) is told either way

    def others(result):
        return [(type(e).__name__, e.device.device_id, e.device.status, e.device.last_seen)
                for e in result.events if not isinstance(e, TelemetryReceived)]

    assert others(quiet) == others(live) and len(others(live)) == 4  # registered, then seen
