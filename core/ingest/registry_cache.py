"""The hub's in-memory view of the registry, written back in batches.

Every telemetry message changes ``last_seen``; writing that to the database
for 10,000 devices a second would cost more than the telemetry itself. The
cache is the live truth, and a device row is written when something a person
cares about changes (new device, status, firmware) or when its ``last_seen``
in the database is older than ``persist_every_s``.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta

from core.model import Device, DeviceStatus
from core.ports.registry import DeviceRegistry


class RegistryCache:
    def __init__(self, registry: DeviceRegistry, *, persist_every_s: float = 30.0) -> None:
        self._registry = registry
        self._devices: dict[str, Device] = {}
        self._persisted_seen: dict[str, datetime | None] = {}
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        self._persist_every = timedelta(seconds=persist_every_s)

    def load(self) -> None:
        devices = self._registry.list()
        with self._lock:
            self._devices = {d.device_id: d for d in devices}
            self._persisted_seen = {d.device_id: d.last_seen for d in devices}

    def __len__(self) -> int:
        return len(self._devices)

    def get(self, device_id: str) -> Device | None:
        with self._lock:
            return self._devices.get(device_id)

    def all(self) -> list[Device]:
        with self._lock:
            return list(self._devices.values())

    def put(self, device: Device, *, important: bool) -> None:
        """``important`` changes are written at the next flush; last-seen-only changes
        when the stored value has grown stale."""
        with self._lock:
            self._devices[device.device_id] = device
            stored = self._persisted_seen.get(device.device_id)
            stale = (device.last_seen is not None and (
                stored is None or device.last_seen - stored >= self._persist_every))
            if important or stale or device.device_id not in self._persisted_seen:
                self._dirty.add(device.device_id)

    def refresh(self, device_id: str) -> Device | None:
        """Re-read one device after a console edited it (name, tags, decommission)."""
        device = self._registry.find(device_id)
        with self._lock:
            if device is None:
                self._devices.pop(device_id, None)
            else:
                self._devices[device_id] = device
                self._persisted_seen[device_id] = device.last_seen
        return device

    def flush(self) -> int:
        with self._lock:
            dirty = [self._devices[d] for d in self._dirty if d in self._devices]
            self._dirty.clear()
        if dirty:
            try:
                self._registry.record_activity(dirty)
            except Exception:
                with self._lock:  # the database is away: write them next time
                    self._dirty.update(d.device_id for d in dirty)
                raise
            with self._lock:
                for device in dirty:
                    self._persisted_seen[device.device_id] = device.last_seen
        return len(dirty)

    def mark_stale(self, now: datetime, stale_after: timedelta) -> list[Device]:
        """Online devices silent for longer than ``stale_after`` go offline."""
        changed = []
        with self._lock:
            for device_id, device in self._devices.items():
                if device.status is DeviceStatus.ONLINE and device.last_seen is not None and (
                        now - device.last_seen > stale_after):
                    updated = replace(device, status=DeviceStatus.OFFLINE, updated_at=now)
                    self._devices[device_id] = updated
                    self._dirty.add(device_id)
                    changed.append(updated)
        return changed
