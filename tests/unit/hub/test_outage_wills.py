"""Which offline marks a broker outage undoes: only those of its last second."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from core.model import Device, DeviceStatus
from plugins.local.hub.outage_wills import WILL_GRACE_S, restore_outage_wills

LOST = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)


class Cache:
    def __init__(self, devices: list[Device]) -> None:
        self.devices = {d.device_id: d for d in devices}
        self.important: list[str] = []

    def all(self) -> list[Device]:
        return list(self.devices.values())

    def put(self, device: Device, *, important: bool) -> None:
        self.devices[device.device_id] = device
        if important:
            self.important.append(device.device_id)


def _device(device_id: str, status: DeviceStatus, changed_s_before_loss: float) -> Device:
    at = LOST - timedelta(seconds=changed_s_before_loss)
    return Device(device_id, status=status, last_seen=at - timedelta(seconds=1), updated_at=at)


def test_only_the_wills_of_the_brokers_last_second_are_undone() -> None:
    cache = Cache([
        _device("shutdown-will", DeviceStatus.OFFLINE, 0.002),   # the broker's dying burst
        _device("drove-away", DeviceStatus.OFFLINE, WILL_GRACE_S + 2),  # really gone before
        _device("fine", DeviceStatus.ONLINE, 30),
        replace(_device("never-seen", DeviceStatus.OFFLINE, 0.002), last_seen=None),
        _device("retired", DeviceStatus.DECOMMISSIONED, 0.002),
    ])
    now = LOST + timedelta(seconds=0.5)
    restored = restore_outage_wills(cache, LOST, now)
    assert [d.device_id for d in restored] == ["shutdown-will"]
    back = cache.devices["shutdown-will"]
    assert back.status is DeviceStatus.ONLINE and back.updated_at == now
    assert back.last_seen == LOST - timedelta(seconds=1.002)  # as last heard, not "now"
    assert cache.important == ["shutdown-will"]  # written to the registry at the next flush
    assert cache.devices["drove-away"].status is DeviceStatus.OFFLINE
    assert cache.devices["never-seen"].status is DeviceStatus.OFFLINE
    # run again during the outage: nothing left to undo
    assert restore_outage_wills(cache, LOST, now + timedelta(seconds=5)) == []
