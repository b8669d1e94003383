"""Readings the broker delivers late are new data: stored once, counted as
reordered, and never allowed to set the registry's firmware version back (a late
reading of the boot before an update still names the old image)."""

from __future__ import annotations

import json

import pytest

from core.ingest.ingestor import Inbound, Ingestor
from core.ingest.registry_cache import RegistryCache
from core.store import Store

T0 = 1_795_000_000_000  # epoch ms of the first boot


def reading(seq: int, uptime: int, fw: str, boot_at: int = T0) -> Inbound:
    ts = boot_at + uptime * 1000
    body = {"device_id": "p1", "seq": seq, "ts": ts, "type": "pump", "fw": fw,
            "metrics": {"t": float(seq)}, "uptime": uptime}
    return Inbound("dt/acme/p1/telemetry", json.dumps(body).encode(), ts)


@pytest.fixture
def store(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    yield store
    store.close()


def test_a_late_reading_of_the_boot_before_an_update_is_stored_but_keeps_the_new_version(store):
    ingestor = Ingestor(RegistryCache(store.registry))
    first = ingestor.process([reading(s, 10 + 5 * s, "1.0.0") for s in (0, 1, 2, 4)], T0 + 40_000)
    assert len(first.readings) == 4  # seq 3 is late: counted lost for now
    assert ingestor.stats["p1"].lost == 1
    # the update's reboot: a new boot on 1.1.0, seq and uptime restarted
    booted = T0 + 120_000
    updated = ingestor.process([reading(0, 1, "1.1.0", booted), reading(1, 6, "1.1.0", booted)],
                               booted + 6_000)
    assert len(updated.readings) == 2 and ingestor.stats["p1"].reboots == 1
    ingestor.cache.flush()
    assert store.registry.get("p1").firmware_version == "1.1.0"
    # the old boot's seq 3 arrives now (QoS 1 redelivery): stored, counted, loss given back
    late = ingestor.process([reading(3, 25, "1.0.0")], booted + 7_000)
    assert [r.value for r in late.readings] == [3.0] and late.quarantined == []
    stats = ingestor.stats["p1"]
    assert (stats.received, stats.lost, stats.out_of_order, stats.duplicates) == (7, 0, 1, 0)
    ingestor.cache.flush()
    assert ingestor.cache.get("p1").firmware_version == "1.1.0"
    assert store.registry.get("p1").firmware_version == "1.1.0"
    # and again: a duplicate now, quarantined with the reason
    again = ingestor.process([reading(3, 25, "1.0.0")], booted + 8_000)
    assert again.readings == [] and [m.reason for m in again.quarantined] == ["duplicate"]
    assert "seq 3 was already received in the previous boot" in again.quarantined[0].detail


def status(state: str, connect_at: int, fw: str) -> Inbound:
    body = {"state": state, "ts": connect_at, "type": "pump", "fw": fw}
    return Inbound("dt/acme/p1/status", json.dumps(body).encode(), connect_at)


def test_a_last_will_from_before_an_update_does_not_set_the_version_back(store):
    """The broker may deliver the old session's Last Will (which names the image
    it connected with) after the updated device's first readings; a device that
    reports hourly would have shown the old version for an hour."""
    ingestor = Ingestor(RegistryCache(store.registry))
    ingestor.process([status("online", T0, "1.0.0"), reading(0, 10, "1.0.0"),
                      reading(1, 15, "1.0.0")], T0 + 20_000)
    booted = T0 + 120_000
    ingestor.process([status("online", booted + 500, "1.1.0"),
                      reading(0, 1, "1.1.0", booted)], booted + 2_000)
    assert ingestor.cache.get("p1").firmware_version == "1.1.0"
    will = ingestor.process([status("offline", T0, "1.0.0")], booted + 3_000)
    assert will.quarantined == []
    ingestor.cache.flush()
    assert store.registry.get("p1").firmware_version == "1.1.0"
    # a connect newer than any known does name the running image
    ingestor.process([status("online", booted + 60_000, "1.2.0")], booted + 61_000)
    assert ingestor.cache.get("p1").firmware_version == "1.2.0"
