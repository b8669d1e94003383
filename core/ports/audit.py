"""Reading the audit trail: what the audit use cases need from a backend.

The trail itself is written through ``core.ports.hub.AuditTrail``; this port
adds the reads (search, head, verification) so core/services can offer
``smartiot audit`` and the Audit page without knowing the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    ts: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What ``smartiot audit verify`` and the Audit page show."""

    entries: int
    head_seq: int
    head_hash: str
    checkpoints: int
    first_bad_seq: int | None = None
    problems: tuple[str, ...] = ()
    # False when no key could check the checkpoints' signatures (e.g. a team
    # console without the hub's key): the chain is checked, the anchor is not.
    signatures_checked: bool = True
    pending: int = 0  # newest entries not anchored yet, within the grace period

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.problems:
            return self.problems[0]
        text = (f"audit trail intact: {self.entries} entries, head #{self.head_seq} "
                f"{self.head_hash[:16]}, {self.checkpoints} signed checkpoints")
        if not self.signatures_checked:
            text += " (signatures not checked: the checkpoint key is not available here)"
        if self.pending:
            text += f"; {self.pending} newest entries wait for the hub's next checkpoint"
        return text


# How often `smartiot hub` signs the head (core.store.audit_anchor): a team
# console lets the newest entries wait for a checkpoint twice this long.
HUB_CHECKPOINT_INTERVAL_S = 60.0


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str = ""
    action: str = ""  # exact, or a prefix ending in "." (e.g. "alert.")
    subject: str = ""  # substring
    since: datetime | None = None
    outcome: str = ""  # "denied" for refusals only
    limit: int | None = None
    newest_first: bool = False


class AuditReader(Protocol):
    def search(self, query: AuditFilter | None = None) -> list[AuditEntry]: ...

    def head(self) -> tuple[int, str, int]:
        """(newest seq, its hash, number of entries)."""

    def check(self, *, grace: timedelta = ..., anchor_file: Any = None) -> AuditReport: ...

    def append(self, actor: str, action: str, subject: str,
               details: dict[str, Any] | None = None) -> Any: ...
