"""Alert store port with the optimistic-concurrency contract the lifecycle needs."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

from core.model import Alert, AlertEvent, AlertState, Severity


@dataclass(frozen=True, slots=True)
class AlertQuery:
    device_id: str = ""
    states: frozenset[AlertState] = frozenset()
    severities: frozenset[Severity] = frozenset()
    since: datetime | None = None
    changed_since: datetime | None = None  # updated at or after (consoles catching up)
    limit: int | None = None
    offset: int = 0  # rows skipped from the newest, for pages cut in the store
    organization: str = ""  # only alerts of this organization's registered devices
    device_ids: frozenset[str] = frozenset()  # only these devices' (a page of the device list)


class AlertStore(ABC):
    @abstractmethod
    def add(self, alert: Alert) -> None:
        """Store a new alert (version 1)."""

    @abstractmethod
    def get(self, alert_id: str) -> Alert:
        """Raise core.errors.NotFound when the id is unknown."""

    @abstractmethod
    def save(self, alert: Alert) -> None:
        """Persist a changed alert whose ``version`` is one more than the stored one.

        Raises core.errors.ConcurrentModification, naming who changed it, when
        the stored version moved on in the meantime: exactly one of two
        simultaneous acknowledgements wins.
        """

    @abstractmethod
    def list(self, query: AlertQuery | None = None) -> list[Alert]: ...

    @abstractmethod
    def open_alert_for(self, device_id: str, rule_id: str) -> Alert | None:
        """The one non-resolved alert of a rule on a device, if any."""

    @abstractmethod
    def counts_by_severity(self, *, open_only: bool = True) -> dict[Severity, int]: ...

    @abstractmethod
    def open_counts_by_device(self) -> dict[str, int]:
        """Number of non-resolved alerts per device (devices without any are
        absent), in one query for the whole fleet."""

    def history(self, alert_id: str) -> builtins.list[AlertEvent]:
        """The alert's changes, oldest first (raised, acknowledged, snoozed,
        resolved, reopened), with who and why. Stores that keep no history
        return an empty list; the console then reads the audit trail."""
        return []
