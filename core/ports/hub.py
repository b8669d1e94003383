"""Ports the local hub and the console share: rules, quarantine, link stats,
commands and shadows, each persisted so several consoles see the same state."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from core.model.link import CommandRecord, LinkStats, QuarantinedMessage
from core.model.rule import AlertRule
from core.ports.shadows import ShadowDocument


class AlertRuleStore(ABC):
    @abstractmethod
    def add(self, rule: AlertRule) -> None: ...

    @abstractmethod
    def get(self, rule_id: str) -> AlertRule:
        """Raise core.errors.NotFound when unknown."""

    @abstractmethod
    def save(self, rule: AlertRule) -> None:
        """Persist an edited rule whose version is one more than the stored one;
        ConcurrentModification when someone else saved first."""

    @abstractmethod
    def list(self, *, enabled_only: bool = False) -> builtins.list[AlertRule]: ...

    @abstractmethod
    def delete(self, rule_id: str) -> None: ...


class QuarantineStore(ABC):
    @abstractmethod
    def add_many(self, messages: Sequence[QuarantinedMessage]) -> None: ...

    @abstractmethod
    def list(self, *, limit: int = 500, reason: str | None = None,
             device_id: str | None = None) -> builtins.list[QuarantinedMessage]:
        """Newest first."""

    @abstractmethod
    def counts_by_reason(self) -> dict[str, int]: ...

    @abstractmethod
    def purge_before(self, cutoff: datetime) -> int: ...


class LinkStatsStore(ABC):
    @abstractmethod
    def get(self, device_id: str) -> LinkStats | None: ...

    @abstractmethod
    def upsert_many(self, stats: Sequence[LinkStats]) -> None: ...

    @abstractmethod
    def list(self) -> builtins.list[LinkStats]: ...


class CommandLog(ABC):
    @abstractmethod
    def add(self, record: CommandRecord) -> None:
        """Persist a new command (status PENDING) before it is sent."""

    @abstractmethod
    def update(self, record: CommandRecord) -> None: ...

    @abstractmethod
    def get(self, request_id: str) -> CommandRecord: ...

    @abstractmethod
    def list_for(self, device_id: str, *, limit: int = 50) -> builtins.list[CommandRecord]:
        """Newest first."""

    @abstractmethod
    def unfinished(self) -> builtins.list[CommandRecord]:
        """PENDING or SENT commands: resent or timed out after a restart."""


class ShadowStore(ABC):
    """Persistence of shadow documents; the shadow *service* applies IoT Core's rules."""

    @abstractmethod
    def get(self, device_id: str) -> ShadowDocument | None: ...

    @abstractmethod
    def save(self, document: ShadowDocument, *, expected_version: int | None) -> None:
        """Write ``document`` (whose version is already incremented); raise
        ConcurrentModification if the stored version is not ``expected_version``
        (None = the shadow must not exist yet)."""

    @abstractmethod
    def delete(self, device_id: str) -> None: ...


class AuditTrail(Protocol):
    """The append-only, hash-chained audit log (core.store.AuditLog implements it)."""

    def append(self, actor: str, action: str, subject: str,
               details: dict[str, Any] | None = None) -> Any: ...
