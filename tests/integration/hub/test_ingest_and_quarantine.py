"""Bad input from devices: never a crash, never blocks ingestion, never stored as
good data — counted and quarantined with the reason."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from core.model import DeviceStatus
from core.model.events import DeviceChanged, MessageRejected
from plugins.local.hub.downtime import MARGIN_MS
from tests.integration.hub.conftest import wait_until
from tests.mqtt_recorder import Recorder


def good(device, seq, ts_ms=None, **metrics):
    # one reading per millisecond per device: the store keys readings by time
    return json.dumps({"device_id": device, "seq": seq,
                       "ts": ts_ms or int(time.time() * 1000) - 1000 + seq, "type": "pump",
                       "fw": "1.0.0",
                       "metrics": metrics or {"temperature": 20.0 + seq}}).encode()


def test_every_kind_of_bad_message_is_quarantined_and_ingestion_goes_on(
        hub_setup, mosquitto_broker):
    _hub, store, log = hub_setup
    # A seq gap within MARGIN_MS of the hub's connect is booked as the hub's loss
    # (plugins/local/hub/downtime.py); this test is about the device's own.
    time.sleep(MARGIN_MS / 1000 + 0.2)
    now = int(time.time() * 1000)

    def reading(seq: int) -> bytes:
        # Dated from one clock reading: dated at each publish, seq 3 sent 2 ms after
        # seq 5 (a loaded machine) got seq 5's time, and the store keeps one a time.
        return good("p1", seq, now + seq)

    sender = Recorder(mosquitto_broker.host, mosquitto_broker.port, ["nothing/here"])
    cases = {
        "malformed_json": ("dt/acme/p1/telemetry", b'{"device_id": "p1", "seq": '),
        "not_object": ("dt/acme/p1/telemetry", b"[1, 2, 3]"),
        "wrong_type": ("dt/acme/p1/telemetry", json.dumps(
            {"device_id": "p1", "seq": "seven", "ts": now, "metrics": {"t": 1}}).encode()),
        "non_finite": ("dt/acme/p1/telemetry", b'{"device_id":"p1","seq":9,"ts":%d,'
                       b'"metrics":{"t":NaN}}' % now),
        "unknown_field": ("dt/acme/p1/telemetry", json.dumps(
            {"device_id": "p1", "seq": 9, "ts": now, "metrics": {"t": 1}, "x": 1}).encode()),
        "oversized": ("dt/acme/p1/telemetry", b'{"pad":"' + b"x" * 140_000 + b'"}'),
        "invalid_device_id": ("dt/acme/bad id!/telemetry", good("bad id!", 1)),
        "device_mismatch": ("dt/acme/p1/telemetry", good("p2", 1)),
        "ts_future": ("dt/acme/p1/telemetry", good("p1", 1, now + 3_600_000)),
        "ts_past": ("dt/acme/p1/telemetry", good("p1", 1, now - 30 * 86_400_000)),
        "missing_field": ("dt/acme/p1/telemetry", json.dumps(
            {"device_id": "p1", "ts": now, "metrics": {"t": 1}}).encode()),
    }
    try:
        sender.publish("dt/acme/p1/telemetry", reading(1))
        for topic, payload in cases.values():
            sender.publish(topic, payload)
        # seq accounting: 2 next, 5 (gap of 2), 5 again (duplicate), 3 (late: stored)
        for seq in (2, 5, 5, 3, 6):
            sender.publish("dt/acme/p1/telemetry", reading(seq))
        wait_until(lambda: sum(store.quarantine.counts_by_reason().values()) >= len(cases) + 1)
        wait_until(lambda: getattr(store.link_stats.get("p1"), "received", 0) == 5)
    finally:
        sender.close()
    counts = store.quarantine.counts_by_reason()
    for reason in cases:
        assert counts.get(reason) == 1, (reason, counts)
    assert counts["duplicate"] == 1 and "out_of_order" not in counts
    # good data made it, bad data did not
    # the late seq 3 is new data (it filled the gap): stored, counted as reordered.
    # The link statistics can be written before the telemetry batch that holds seq 3
    # (the writer is asynchronous), so wait for the batch before comparing.
    def stored() -> list[float]:
        series = store.telemetry.query("p1", "temperature", datetime(2020, 1, 1, tzinfo=UTC),
                                       datetime(2100, 1, 1, tzinfo=UTC))
        return sorted(series.value.tolist())

    wait_until(lambda: len(stored()) >= 5, message="the 5 good readings were not all stored")
    assert stored() == [21.0, 22.0, 23.0, 25.0, 26.0]
    stats = wait_until(lambda: store.link_stats.get("p1"))
    assert stats.received == 5 and stats.lost == 1  # 4 missing, 3 arrived late
    assert stats.duplicates == 1 and stats.out_of_order == 1
    assert stats.rejected >= 4
    # every rejection is visible with its reason and the payload kept for diagnosis
    listed = store.quarantine.list(reason="device_mismatch")
    assert listed[0].device_id == "p1" and b'"p2"' in listed[0].payload
    assert "topic names 'p1'" in listed[0].detail
    assert len(log.of(MessageRejected)) >= len(cases)


def test_first_seen_registration_status_and_last_will(hub_setup, mosquitto_broker):
    hub, store, log = hub_setup
    sender = Recorder(mosquitto_broker.host, mosquitto_broker.port, ["nothing/here"])
    try:
        sender.publish("dt/plant/m7/status", b'{"state":"online","type":"meter","fw":"3.1.0"}')
        device = wait_until(lambda: hub.device("m7"))
        assert device.status is DeviceStatus.ONLINE and device.organization == "plant"
        sender.publish("dt/plant/m7/telemetry", good("m7", 0, power=120.5))
        wait_until(lambda: hub.device("m7").last_seen is not None)
        sender.publish("dt/plant/m7/status", b'{"state":"offline","reason":"connection lost"}')
        wait_until(lambda: hub.device("m7").status is DeviceStatus.OFFLINE)
    finally:
        sender.close()
    stored = wait_until(lambda: store.registry.find("m7"))
    wait_until(lambda: store.registry.get("m7").status is DeviceStatus.OFFLINE)
    assert stored.firmware_version in ("3.1.0", "1.0.0")
    assert any(e.device_id == "m7" for e in log.of(DeviceChanged))


def test_decommissioned_device_data_is_quarantined(hub_setup, mosquitto_broker):
    from dataclasses import replace

    hub, store, _log = hub_setup
    sender = Recorder(mosquitto_broker.host, mosquitto_broker.port, ["nothing/here"])
    try:
        sender.publish("dt/acme/old1/telemetry", good("old1", 0))
        wait_until(lambda: store.registry.find("old1"))
        store.registry.upsert(replace(store.registry.get("old1"),
                                      status=DeviceStatus.DECOMMISSIONED))
        hub.cache.refresh("old1")
        sender.publish("dt/acme/old1/telemetry", good("old1", 1))
        wait_until(lambda: store.quarantine.counts_by_reason().get("decommissioned"))
    finally:
        sender.close()
    assert store.registry.get("old1").status is DeviceStatus.DECOMMISSIONED


def test_device_known_only_from_a_last_will_gets_its_type_from_telemetry(
        hub_setup, mosquitto_broker):
    hub, store, _log = hub_setup
    sender = Recorder(mosquitto_broker.host, mosquitto_broker.port, ["nothing/here"])
    try:
        sender.publish("dt/acme/lw1/status", b'{"state":"offline","reason":"connection lost"}')
        assert wait_until(lambda: hub.device("lw1")).device_type == "generic"
        sender.publish("dt/acme/lw1/telemetry", good("lw1", 0))
        wait_until(lambda: hub.device("lw1").device_type == "pump")
    finally:
        sender.close()
    wait_until(lambda: store.registry.get("lw1").device_type == "pump")
