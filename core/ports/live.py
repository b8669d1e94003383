"""Live feed port: the stream of fleet events the console paints.

Callbacks arrive on the backend's network thread; the console's bridge
re-delivers them on the GUI thread in coalesced batches.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.model import Reading


@dataclass(frozen=True, slots=True)
class FleetEvent:
    """One thing that happened: ``kind`` is telemetry, status, alert, shadow, job or rejected."""

    kind: str
    device_id: str
    readings: tuple[Reading, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


Subscriber = Callable[[list[FleetEvent]], None]


class LiveFeed(ABC):
    @abstractmethod
    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register for batches of events; returns a function that unsubscribes."""

    @abstractmethod
    def connection_state(self) -> str:
        """``connected``, ``connecting``, ``disconnected`` or ``offline`` for the status bar."""
