"""Device registry port: where devices are registered, looked up and listed."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.model import Device, DeviceStatus


@dataclass(frozen=True, slots=True)
class DeviceQuery:
    """Filters the Devices page and ``smartiot devices list`` share; empty means any."""

    text: str = ""
    statuses: frozenset[DeviceStatus] = frozenset()
    device_types: frozenset[str] = frozenset()
    organizations: frozenset[str] = frozenset()
    tag: str = ""
    firmware_version: str = ""
    limit: int | None = None
    offset: int = 0
    # only devices whose id sorts after this one (a page continuing from the
    # last id read: no rows are skipped over, and none shift when a device
    # before it is added or removed meanwhile)
    after: str = ""


class DeviceRegistry(ABC):
    @abstractmethod
    def upsert(self, device: Device) -> None:
        """Insert or replace the device record."""

    @abstractmethod
    def upsert_many(self, devices: Sequence[Device]) -> None:
        """Batch form used by ingestion, one transaction for the whole batch."""

    @abstractmethod
    def record_activity(self, devices: Sequence[Device]) -> None:
        """What the hub learns from traffic: insert devices seen for the first time;
        for known ones update only last_seen, status, firmware version (and a
        "generic" type once the device says what it is), never
        what people edit (name, tags, location, metadata), so a console's edit is
        not overwritten by the hub's older copy. Decommissioned devices stay so."""

    @abstractmethod
    def get(self, device_id: str) -> Device:
        """Raise core.errors.NotFound when the id is unknown."""

    @abstractmethod
    def find(self, device_id: str) -> Device | None: ...

    def find_many(self, device_ids: Sequence[str]) -> dict[str, Device]:
        """The known ones of ``device_ids`` by id (the unknown left out). A
        store overrides this with one query a chunk: a console told of 10,000
        devices coming online at once looked each one up on its own."""
        return find_each(self.find, device_ids)

    @abstractmethod
    def list(self, query: DeviceQuery | None = None) -> list[Device]: ...

    def statuses(self) -> dict[str, DeviceStatus]:
        """Every device's status by id: what a count of the fleet's health
        reads (a store overrides this with a query of the two columns)."""
        return {d.device_id: d.status for d in self.list()}

    @abstractmethod
    def count(self, query: DeviceQuery | None = None) -> int: ...

    @abstractmethod
    def save(self, device: Device, *, expected_version: int | None = None) -> Device:
        """Store what a person edited and return the record with its next
        version; ConcurrentModification when ``expected_version`` is given and
        the stored one differs (someone saved in between), NotFound if unknown."""

    @abstractmethod
    def delete(self, device_id: str, *, expected_version: int | None = None) -> None:
        """NotFound if unknown; ConcurrentModification on a stale ``expected_version``."""


def find_each(find: Callable[[str], Device | None],
              device_ids: Sequence[str]) -> dict[str, Device]:
    """``find_many`` one device at a time: for a source that answers only that."""
    found = {}
    for device_id in dict.fromkeys(device_ids):
        device = find(device_id)
        if device is not None:
            found[device_id] = device
    return found
