"""Live feed port: the stream of fleet events the console paints.

The events are the typed records of ``core.model.events`` (``FleetEvent`` is
their union), matched on by type.

Callbacks arrive on the backend's network thread; the console's bridge
re-delivers them on the GUI thread in coalesced batches.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.model.events import FleetEvent

__all__ = ["TABLE_METRICS", "FleetEvent", "LinkStatus", "LiveFeed", "Subscriber"]

Subscriber = Callable[[list[FleetEvent]], None]
# The readings of every device a fleet-wide view shows (the devices table's
# battery and signal columns); see LiveFeed.focus.
TABLE_METRICS = ("battery_pct", "rssi")


def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """The live link as the status bar says it. ``state``: one of
    ``connection_state()``'s words, or ``starting`` (setting up the first
    connection: nothing has failed yet), ``reconnecting`` (the next attempt at
    ``retry_at``, epoch seconds) or ``expired`` (the credentials ran out and
    only signing in again helps); ``detail``: why, for a tooltip."""

    state: str
    retry_at: float | None = None
    detail: str = ""


class LiveFeed(ABC):
    @abstractmethod
    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register for batches of events; returns a function that unsubscribes."""

    @abstractmethod
    def connection_state(self) -> str:
        """``connected``, ``connecting``, ``disconnected`` or ``offline`` for the status bar."""

    def link_status(self) -> LinkStatus:
        """The state with what a person can do about it; feeds that know no
        more than ``connection_state()`` need not override this."""
        return LinkStatus(self.connection_state())

    def focus(self, device_ids: Iterable[str]) -> Callable[[], None]:
        """A view that shows every metric of a few devices (a device's detail,
        a live chart) names them here. A feed serving thousands of devices may
        pass on the others' messages as ``TableSamples`` (each message's time,
        ``TABLE_METRICS`` and firmware, in columns), which is all the fleet's
        table shows (the local console with its hub in a child process does:
        plugins.local.live_receiver). Returns a function
        that withdraws the request; feeds that always pass every reading on
        need not override this."""
        return _nothing
