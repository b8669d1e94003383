"""A device that disconnects cleanly stays offline when its last readings are
handled after its "offline" status.

Where telemetry and statuses reach the ingest on two paths (the hub's receiver
process and its link, before statuses moved to the receiver too; on AWS, one
IoT rule per filter), a fleet that stops at once has its last readings and its
"offline" received in the same millisecond, and the readings can be processed
second. They used to bring the device back online, where it stayed until the
silence check found it minutes later (QA saw a finished run's sensors online).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from core.ingest.ingestor import Inbound, Ingestor
from core.ingest.registry_cache import RegistryCache
from core.model import DeviceStatus
from core.model.events import DeviceChanged
from core.model.timeutil import from_epoch_ms
from core.store import Store

T0 = 1_795_000_000_000


def reading(seq: int, received_ms: int) -> Inbound:
    body = {"device_id": "s1", "seq": seq, "ts": T0 + seq * 1000, "type": "environmental",
            "fw": "1.0.0", "metrics": {"t": float(seq)}, "uptime": 10 + seq}
    return Inbound("dt/acme/s1/telemetry", json.dumps(body).encode(), received_ms)


def status(state: str, received_ms: int) -> Inbound:
    body = {"state": state, "ts": T0, "type": "environmental", "fw": "1.0.0"}
    return Inbound("dt/acme/s1/status", json.dumps(body).encode(), received_ms)


def status_of(ingestor: Ingestor) -> DeviceStatus:
    device = ingestor.cache.get("s1")
    assert device is not None
    return device.status


@pytest.fixture(name="ingestor")
def ingestor_fixture(tmp_path: Path) -> Iterator[Ingestor]:
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    yield Ingestor(RegistryCache(store.registry))
    store.close()


@pytest.mark.parametrize("late_by_ms", [0, 3])
def test_readings_received_before_the_offline_status_keep_the_device_offline(
        ingestor: Ingestor, late_by_ms: int) -> None:
    ingestor.process([status("online", T0), reading(0, T0 + 100)], T0 + 100)
    assert status_of(ingestor) is DeviceStatus.ONLINE
    off_at = T0 + 2_000
    ingestor.process([status("offline", off_at)], off_at + 5)
    assert status_of(ingestor) is DeviceStatus.OFFLINE

    # the last reading, received in the same millisecond or just before, handled after
    late = ingestor.process([reading(1, off_at - late_by_ms)], off_at + 10)
    assert [r.value for r in late.readings] == [1.0]  # stored all the same
    assert status_of(ingestor) is DeviceStatus.OFFLINE
    assert not [e for e in late.events if isinstance(e, DeviceChanged)
                and e.device.status is DeviceStatus.ONLINE]
    # a further late one too (the first did not move the offline's time)
    ingestor.process([reading(2, off_at - late_by_ms)], off_at + 20)
    assert status_of(ingestor) is DeviceStatus.OFFLINE


def test_a_reading_received_after_the_offline_brings_the_device_back(
        ingestor: Ingestor) -> None:
    ingestor.process([status("online", T0), reading(0, T0 + 100)], T0 + 100)
    ingestor.process([status("offline", T0 + 2_000)], T0 + 2_005)
    back = ingestor.process([reading(1, T0 + 2_001)], T0 + 2_010)
    assert status_of(ingestor) is DeviceStatus.ONLINE
    assert any(isinstance(e, DeviceChanged) and e.device.status is DeviceStatus.ONLINE
               for e in back.events)


def test_an_offline_from_the_silence_sweep_is_undone_by_the_backlog_being_drained(
        ingestor: Ingestor) -> None:
    """Only the device's own word holds readings back: after a hub restart the
    sweep may call a device silent while its queued readings still wait in the
    inbox; they were received before the sweep and must bring it back."""
    ingestor.process([status("online", T0), reading(0, T0 + 100)], T0 + 100)
    swept = ingestor.cache.mark_stale(from_epoch_ms(T0 + 600_000), timedelta(seconds=60))
    assert [d.device_id for d in swept] == ["s1"]
    assert status_of(ingestor) is DeviceStatus.OFFLINE
    ingestor.process([reading(1, T0 + 1_000)], T0 + 600_010)
    assert status_of(ingestor) is DeviceStatus.ONLINE
