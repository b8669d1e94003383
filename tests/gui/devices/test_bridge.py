"""LiveBridge: events from any thread arrive on the GUI thread in few, coalesced batches."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from PySide6.QtCore import QThread

from console.bridge import MIN_INTERVAL_MS, LiveBridge
from core.model import Device, Reading
from core.model.events import (
    DeviceChanged,
    FleetEvent,
    HubStatus,
    MessageRejected,
    TelemetryReceived,
)
from core.model.link import QuarantinedMessage
from core.services.event_bus import EventBus


def _telemetry(n: int, devices: int = 100) -> list[FleetEvent]:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    return [TelemetryReceived(f"d-{i % devices}",
                              (Reading(f"d-{i % devices}", "temp", t0 + timedelta(milliseconds=i),
                                       float(i)),),
                              seq=i)
            for i in range(n)]


def test_50k_events_from_a_worker_arrive_in_a_handful_of_batches(qtbot):
    bus = EventBus()
    bridge = LiveBridge(bus, interval_ms=100)
    batches: list[list[FleetEvent]] = []
    threads: set[object] = set()

    def on_batch(events: list[FleetEvent]) -> None:
        threads.add(QThread.currentThread())
        batches.append(events)

    bridge.batch.connect(on_batch)
    events = _telemetry(50_000)
    started = time.monotonic()

    def publish() -> None:
        for i in range(0, len(events), 50):  # the hub publishes in small batches
            bus.publish(events[i:i + 50])

    worker = threading.Thread(target=publish)
    worker.start()
    qtbot.waitUntil(lambda: not worker.is_alive(), timeout=30_000)
    qtbot.waitUntil(lambda: bridge.pending() == 0 and bool(batches), timeout=15_000)
    elapsed_ms = (time.monotonic() - started) * 1000

    assert bridge.received == 50_000
    # one flush per timer tick at most, however many messages came in
    assert len(batches) <= elapsed_ms / 100 + 2
    assert len(batches) <= 10
    assert threads == {QThread.currentThread()}  # delivered on the GUI thread
    # coalesced per device, but every reading is still there, in order
    readings = [r for batch in batches for e in batch for r in e.readings]
    assert len(readings) == 50_000
    assert sorted(r.value for r in readings) == [float(i) for i in range(50_000)]
    per_device = max(sum(1 for e in batch if e.device_id == "d-7") for batch in batches)
    assert per_device == 1
    for batch in batches:
        for event in batch:
            values = [r.value for r in event.readings]
            assert values == sorted(values)
    bridge.close()
    assert bus.subscriber_count == 0


def _quarantined(payload: bytes) -> QuarantinedMessage:
    return QuarantinedMessage("t", "r", "", payload)


def test_device_events_keep_the_newest_and_rejected_messages_are_all_kept(qtbot):
    bus = EventBus()
    bridge = LiveBridge(bus)
    got: list[list[FleetEvent]] = []
    bridge.batch.connect(got.append)
    bus.publish([
        DeviceChanged(Device("a", name="old")),
        MessageRejected(_quarantined(b"1")),
        DeviceChanged(Device("a", name="new")),
        MessageRejected(_quarantined(b"2")),
        HubStatus("connected", messages_per_s=1.0),
        HubStatus("connected", messages_per_s=2.0),
    ])
    bridge.flush()
    assert len(got) == 1
    (batch,) = got
    devices = [e for e in batch if isinstance(e, DeviceChanged)]
    assert [e.device.name for e in devices] == ["new"]
    assert len([e for e in batch if isinstance(e, MessageRejected)]) == 2
    assert [e.messages_per_s for e in batch if isinstance(e, HubStatus)] == [2.0]
    bridge.flush()
    assert len(got) == 1  # nothing new, no empty batch


def test_never_faster_than_30_hz_and_unsubscribes_when_destroyed(qtbot):
    bus = EventBus()
    bridge = LiveBridge(bus, interval_ms=1)
    assert bridge.interval_ms == MIN_INTERVAL_MS >= 1000 / 30
    assert bus.subscriber_count == 1
    bridge.deleteLater()
    qtbot.waitUntil(lambda: bus.subscriber_count == 0, timeout=2_000)
    bus.publish(_telemetry(3))  # a feed still publishing does not touch the dead bridge


def test_without_coalescing_every_event_is_delivered(qtbot):
    bus = EventBus()
    bridge = LiveBridge(bus, coalesce=False)
    got: list[FleetEvent] = []
    bridge.batch.connect(got.extend)
    bus.publish(_telemetry(500, devices=3))
    bridge.flush()
    assert len(got) == 500


def test_a_latest_values_view_gets_the_newest_reading_per_metric_except_for_kept_devices(
        qtbot):
    """The devices table shows latest values: per device and flush it gets each
    metric's newest reading (by time, whatever the arrival order), with the
    newest seq; the device open in the detail still gets every reading."""
    bus = EventBus()
    bridge = LiveBridge(bus, interval_ms=60_000, newest_readings=True)  # flushed by hand
    bridge.keep_all_readings(["d-1"])
    t0 = datetime(2025, 1, 1, tzinfo=UTC)

    def message(device: str, second: int, seq: int) -> TelemetryReceived:
        at = t0 + timedelta(seconds=second)
        return TelemetryReceived(device, (Reading(device, "temp", at, float(second)),
                                          Reading(device, "battery", at, 100.0 - second)),
                                 seq=seq, firmware="1.0.0")

    # d-0's second 3 arrives after second 5 (a reordered message)
    bus.publish([message("d-0", 1, 1), message("d-1", 1, 1), message("d-0", 5, 3),
                 message("d-1", 2, 2), message("d-0", 3, 2)])
    batches: list[list[FleetEvent]] = []
    bridge.batch.connect(batches.append)
    bridge.flush()
    (events,) = batches
    by_device = {e.device_id: e for e in events if isinstance(e, TelemetryReceived)}
    newest = {r.metric: r.value for r in by_device["d-0"].readings}
    assert newest == {"temp": 5.0, "battery": 95.0} and len(by_device["d-0"].readings) == 2
    assert by_device["d-0"].seq == 2  # the event is the newest message's, as without
    assert [r.value for r in by_device["d-1"].readings if r.metric == "temp"] == [1.0, 2.0]
    assert bridge.readings_received == 10

    bridge.keep_all_readings([])  # the detail closed
    bus.publish([message("d-1", 3, 3), message("d-1", 4, 4)])
    bridge.flush()
    assert [r.value for r in batches[-1][0].readings if r.metric == "temp"] == [4.0]
    # a single message in a window is passed on as it came
    single = message("d-2", 9, 9)
    bus.publish([single])
    bridge.flush()
    assert batches[-1] == [single]
    bridge.close()
