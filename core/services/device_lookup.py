"""A device's record for live messages that name only its id (a status
change on the broker), read through the person's API session and kept
briefly.

A console that works through a REST API holds no database (and on AWS no
keys that could read DynamoDB), yet its live feed must turn "pump-3 went
offline" into the device's record; asking the API once per message would
cost a request per status change, so answers — "no such device" included —
are kept for ``ttl_s``, and a burst of statuses (a fleet coming online, a
broker restart) is looked up a hundred devices a request (``find_many``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from core.errors import NotFound, SmartIotError
from core.model import Device
from core.ports.fleet_api import FleetApi

log = logging.getLogger(__name__)

DEVICE_CACHE_S = 30.0


class HasApi(Protocol):
    """What holds the session (the console's context): read at each call,
    because a sign-in replaces the session."""

    @property
    def api(self) -> FleetApi: ...


class CachedDeviceLookup:
    def __init__(self, source: HasApi, *, ttl_s: float = DEVICE_CACHE_S) -> None:
        self._source = source
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, Device | None]] = {}
        self._lock = threading.Lock()

    def find(self, device_id: str) -> Device | None:
        """The record, or None when the API does not know the device or cannot
        be asked now (a failed look-up is not kept: the next message asks again)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(device_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        try:
            device: Device | None = self._source.api.devices.get(device_id)
        except NotFound:
            device = None
        except SmartIotError as exc:
            log.info("device %s not looked up through the API: %s", device_id, exc)
            return None
        with self._lock:
            self._cache[device_id] = (now, device)
        return device

    def find_many(self, device_ids: Sequence[str]) -> dict[str, Device]:
        """What the cache holds fresh, and the rest in requests of many ids
        each (``get_many``): a fleet coming online at once is a few requests,
        not one a device. When the API cannot be asked, what is known."""
        now = time.monotonic()
        found: dict[str, Device] = {}
        missing: list[str] = []
        with self._lock:
            for device_id in dict.fromkeys(device_ids):
                hit = self._cache.get(device_id)
                if hit is not None and now - hit[0] < self._ttl:
                    if hit[1] is not None:
                        found[device_id] = hit[1]
                else:
                    missing.append(device_id)
        if not missing:
            return found
        try:
            fetched = {d.device_id: d for d in self._source.api.devices.get_many(missing)}
        except SmartIotError as exc:
            log.info("%d devices not looked up through the API: %s", len(missing), exc)
            return found
        with self._lock:
            for device_id in missing:
                device = fetched.get(device_id)
                self._cache[device_id] = (now, device)
                if device is not None:
                    found[device_id] = device
        return found

    __call__ = find
