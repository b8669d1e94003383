"""Last Wills the broker sends as it goes down say nothing about the devices.

A broker that shuts down (or dies) drops every device connection without a
DISCONNECT, so it publishes their Last Wills ("offline, connection lost") to
whoever is still subscribed; mosquitto 2.0 does this in its last moments, and
the hub receives a burst of them just before its own link drops. Applied as
they are, the console shows the whole fleet offline during a broker outage
although the devices are fine: the hub simply cannot hear them, just as the
offline sweep refuses to turn the silence of an outage into "offline" (see
``Hub._housekeeping``) and the gaps of the outage are booked as ``hub_lost``
(docs/reliability.md).

In process mode the Wills come on the receiver's connection, with the devices'
telemetry; the receiver hands them over before it reports that connection lost,
and the hub counts that loss too (``Hub._on_status_path_state``), dated when the
child saw it: the Wills carry the child's receive times, and on a busy machine the
pipe between can hold the report longer than the grace.

So when the hub's link is lost, devices that went offline within
``WILL_GRACE_S`` (a second) before the loss go back to what the hub knew of them before
(online, last seen unchanged). Once the link is back, a device that really is
gone is marked offline by the sweep after the hub has listened long enough.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from core.model import Device, DeviceStatus

# mosquitto sends the Wills in its last milliseconds and then closes the hub's
# socket: the hub reads both on the same thread, Wills first (measured: within
# 1 ms for 20 devices). A second leaves room for a large fleet's burst while a
# device that really dropped a little earlier keeps its offline (one that dropped
# within the second shows as last heard until the sweep, after the hub has
# listened for ``stale_after`` again, marks it offline).
WILL_GRACE_S = 1.0


class DeviceCache(Protocol):
    def all(self) -> list[Device]: ...

    def put(self, device: Device, *, important: bool) -> None: ...


def restore_outage_wills(cache: DeviceCache, lost_at: datetime, now: datetime,
                         grace_s: float = WILL_GRACE_S) -> list[Device]:
    """Devices marked offline between ``lost_at - grace_s`` and ``now`` (the
    hub's link being down meanwhile) are online again as last heard; returns them."""
    since = lost_at - timedelta(seconds=grace_s)
    restored = []
    for device in cache.all():
        if device.status is DeviceStatus.OFFLINE and device.last_seen is not None and \
                since <= device.updated_at <= now:
            back = replace(device, status=DeviceStatus.ONLINE, updated_at=now)
            cache.put(back, important=True)
            restored.append(back)
    return restored


__all__ = ["WILL_GRACE_S", "restore_outage_wills"]
