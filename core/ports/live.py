"""Live feed port: the stream of fleet events the console paints.

The events are the typed records of ``core.model.events`` (``FleetEvent`` is
their union), matched on by type.

Callbacks arrive on the backend's network thread; the console's bridge
re-delivers them on the GUI thread in coalesced batches.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from core.model.events import FleetEvent

__all__ = ["FleetEvent", "LiveFeed", "Subscriber"]

Subscriber = Callable[[list[FleetEvent]], None]


class LiveFeed(ABC):
    @abstractmethod
    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register for batches of events; returns a function that unsubscribes."""

    @abstractmethod
    def connection_state(self) -> str:
        """``connected``, ``connecting``, ``disconnected`` or ``offline`` for the status bar."""
