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


class EventKind:
    """The kinds of FleetEvent and what ``data`` carries for each."""

    TELEMETRY = "telemetry"  # readings=(Reading, ...); data: {"seq": int, "firmware": str}
    DEVICE = "device"        # data: {"device": Device} (registered, status or metadata changed)
    ALERT = "alert"          # data: {"alert": Alert} (raised, acknowledged, resolved, ...)
    SHADOW = "shadow"        # data: {"document": ShadowDocument}
    COMMAND = "command"      # data: {"record": CommandRecord} (sent, answered, timed out)
    REJECTED = "rejected"    # data: {"message": QuarantinedMessage}
    HUB = "hub"              # device_id "": data: {"connection": str, "messages_per_s": float,
    #                          "readings_per_s": float, "degraded": str ("" when well),
    #                          "shed_overload": int, "inbox": int}; once a second
    CHANGES = "changes"      # device_id "": data: {"topic": str} (core.ports.changes): data
    #                          changed in the store, by anyone; pages showing it reload


@dataclass(frozen=True, slots=True)
class FleetEvent:
    """One thing that happened; ``kind`` is one of :class:`EventKind`."""

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
