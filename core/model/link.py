"""What the hub learns about each device's link and its messages.

``seq`` makes loss, duplication and reordering measurable per device; bad
messages are quarantined with the reason rather than dropped silently, so a
technician can see *why* a device looks quiet.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.model.timeutil import utcnow

QUARANTINE_PAYLOAD_LIMIT = 4096  # enough to diagnose, small enough to keep thousands
QUARANTINE_DETAIL_LIMIT = 2048   # an error text quoting hostile input stays small


@dataclass(frozen=True, slots=True)
class QuarantinedMessage:
    topic: str
    reason: str
    detail: str
    payload: bytes
    device_id: str | None = None
    received_at: datetime = field(default_factory=utcnow)
    message_id: int | None = None

    def __post_init__(self) -> None:
        if len(self.payload) > QUARANTINE_PAYLOAD_LIMIT:
            object.__setattr__(self, "payload", self.payload[:QUARANTINE_PAYLOAD_LIMIT])
        if len(self.detail) > QUARANTINE_DETAIL_LIMIT:
            cut = self.detail[:QUARANTINE_DETAIL_LIMIT - 20]
            object.__setattr__(self, "detail", f"{cut} ... ({len(self.detail)} chars)")


@dataclass(frozen=True, slots=True)
class LinkStats:
    """Per-device message accounting; ``lost`` counts gaps in ``seq``.

    The last four fields are what boot detection needs to carry on after a hub
    restart: the newest ``uptime`` and reading time (device clock, epoch ms) of
    the current boot, its estimated start, and the device's latest connect."""

    device_id: str
    last_seq: int | None = None
    received: int = 0
    lost: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    rejected: int = 0
    reboots: int = 0
    updated_at: datetime = field(default_factory=utcnow)
    last_uptime: int | None = None
    last_ts_ms: int | None = None
    boot_at_ms: int | None = None
    connected_at_ms: int | None = None
    # seq gaps that fell in a period the hub was down or disconnected: lost by
    # the hub (or by the broker's queue for it), so not in ``lost`` nor the ratio
    hub_lost: int = 0

    @property
    def loss_ratio(self) -> float:
        expected = self.received + self.lost
        return self.lost / expected if expected else 0.0


class CommandStatus(enum.StrEnum):
    PENDING = "pending"      # persisted, not yet on the wire
    SENT = "sent"
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"

    @property
    def is_final(self) -> bool:
        return self in (CommandStatus.OK, CommandStatus.ERROR, CommandStatus.TIMEOUT)


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A command as it was asked for and answered; persisted before it is sent."""

    request_id: str
    device_id: str
    command: str
    params: dict[str, Any] = field(default_factory=dict)
    requested_by: str = ""
    status: CommandStatus = CommandStatus.PENDING
    response: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    created_at: datetime = field(default_factory=utcnow)
    completed_at: datetime | None = None
    timeout_s: float = 10.0
