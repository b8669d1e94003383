"""Time passing on AWS (plugins/aws/stream/ticker.py, the ``alert_ticker``
function): after the simulated stream, six minutes of silence mark devices
offline and raise "Device silent" exactly as the hub's housekeeping does, and
a device's next reading through the stream clears its alert — the ticker's
engine state reaches the consumer."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from core.ingest.ingestor import Inbound
from core.model.timeutil import from_epoch_ms, to_epoch_ms
from plugins.aws.stream.ticker import STALE_AFTER
from tests.integration.aws import test_stream_consumer as shared
from tests.integration.aws.stream_fixtures import (
    LocalHubPath,
    alert_outcome,
    publish,
    registry_outcome,
    simulated_stream,
)
from tests.integration.aws.test_stream_consumer import StreamStage

stage = shared.stage  # the same stage fixture as test_stream_consumer.py


def _next_reading(stream: tuple[Inbound, ...], device: str, at_ms: int) -> Inbound:
    last = next(m for m in reversed(stream)
                if m.topic.endswith(f"/{device}/telemetry") and m.payload.startswith(b"{")
                and json.loads(m.payload).get("device_id") == device)
    doc = json.loads(last.payload)
    doc.update(seq=doc["seq"] + 1, ts=at_ms, uptime=doc["uptime"] + (at_ms - doc["ts"]) // 1000)
    return Inbound(last.topic, json.dumps(doc).encode(), at_ms + 40)


def test_silence_raises_device_silent_as_the_hub_and_the_next_reading_clears_it(
        stage: StreamStage, tmp_path: Path) -> None:
    from plugins.aws.stream.wiring import build_ticker

    stream = simulated_stream()
    hub = LocalHubPath(tmp_path / "hub.db")
    hub.ingest(stream)
    handler = stage.handler()
    stage.run(handler)
    backend = stage.fleet.backend

    later = from_epoch_ms(stream[-1].received_ms) + timedelta(minutes=6)
    hub.housekeeping(later, STALE_AFTER)
    outcome = build_ticker(stage.fleet.settings, clock=lambda: later).tick()

    silent = [a for a in alert_outcome(backend.alerts) if a[1] == "demo-no-data"]
    assert len(silent) == 3 and {a[3] for a in silent} == {"active"}
    assert outcome.raised == 3 and outcome.offline == 2  # the third left a Last Will
    assert alert_outcome(backend.alerts) == alert_outcome(hub.store.alerts)
    assert registry_outcome(backend.registry) == registry_outcome(hub.store.registry)
    assert {d[3] for d in registry_outcome(backend.registry)} == {"offline"}

    back = _next_reading(stream, "env-00000", to_epoch_ms(later) + 5000)
    hub.ingest((back,))
    publish(stage.kinesis, stage.stream, (back,))
    # the consumer sees that the ticker changed the device's state since its
    # last batch and reloads it (no write lost to the version condition, no retry)
    assert stage.run(handler).retries == 0

    got = alert_outcome(backend.alerts)
    assert got == alert_outcome(hub.store.alerts)
    cleared = [a for a in got if a[1] == "demo-no-data" and a[0] == "env-00000"]
    assert [a[3] for a in cleared] == ["resolved"]
    assert registry_outcome(backend.registry) == registry_outcome(hub.store.registry)
