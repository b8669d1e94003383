"""Typed live events through the bridge: views filter by type, telemetry of one
device merges into one event that keeps every reading and the newest seq."""

from datetime import UTC, datetime, timedelta

import pytest

from console.bridge import LiveBridge
from core.model import Alert, Reading, Severity
from core.model.events import AlertChanged, DataChanged, FleetEvent, TelemetryReceived
from core.services.event_bus import EventBus

pytestmark = pytest.mark.gui


def test_a_view_gets_only_the_event_types_it_asked_for(qtbot):
    bus = EventBus()
    bridge = LiveBridge(bus, kinds={AlertChanged, DataChanged})
    got: list[FleetEvent] = []
    bridge.batch.connect(got.extend)
    alert = Alert("pump-1", "hot", Severity.WARNING, "too hot")
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    bus.publish([TelemetryReceived("pump-1", (Reading("pump-1", "temp", t0, 1.0),)),
                 AlertChanged(alert, change="raised"), DataChanged("alerts")])
    bridge.flush()
    assert got == [AlertChanged(alert, change="raised"), DataChanged("alerts")]
    assert bridge.readings_received == 0  # telemetry dropped on the feed's thread


def test_telemetry_of_a_window_merges_readings_and_keeps_the_newest_seq(qtbot):
    bus = EventBus()
    bridge = LiveBridge(bus)
    got: list[FleetEvent] = []
    bridge.batch.connect(got.extend)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    bus.publish([TelemetryReceived("pump-1", (Reading("pump-1", "temp", t0 + timedelta(seconds=i),
                                                      float(i)),), seq=i, firmware=f"1.{i}")
                 for i in range(3)])
    bridge.flush()
    (merged,) = got
    assert isinstance(merged, TelemetryReceived)
    assert [r.value for r in merged.readings] == [0.0, 1.0, 2.0]
    assert (merged.seq, merged.firmware) == (2, "1.2")
