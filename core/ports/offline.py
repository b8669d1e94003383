"""Work that survives a bad connection, as the console shows it: changes a
person made that wait in the local outbox, the ones that need the person's
decision (the server refused them meanwhile: someone else resolved the alert),
and whether the pages show cached data because the server cannot be reached.

A RemoteSession that keeps an outbox offers ``offline_work()`` returning an
:class:`OfflineWork`; the console's status bar and banner read it (no Qt or
HTTP here, so the shell stays free of the client's details).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol


class ActionState(Enum):
    PENDING = "pending"  # will be sent (again) by the background sender
    CONFLICT = "conflict"  # the server said 409: someone else changed it first
    REFUSED = "refused"  # the server refused it (403, 404, 400, 422): decide


@dataclass(frozen=True, slots=True)
class QueuedAction:
    action_id: int
    label: str  # "Acknowledge alert 3f2a…"
    user: str  # who queued it: only sent under that person's sign-in
    state: ActionState
    created_at: datetime
    attempts: int
    message: str = ""  # the last error, in words
    changed_by: str | None = None  # for a conflict: who changed it first

    @property
    def needs_decision(self) -> bool:
        return self.state is not ActionState.PENDING


@dataclass(frozen=True, slots=True)
class OfflineStatus:
    pending: int = 0
    oldest: datetime | None = None  # when the oldest waiting action was made
    needs_decision: int = 0
    problem: str = ""  # what stops sending and what to do ("Sign in again …")
    offline: bool = False  # the last read could not reach the server
    data_from: datetime | None = None  # offline: when the shown (cached) data was read


class OfflineWork(Protocol):
    def status(self) -> OfflineStatus:
        """Cheap (in memory): the status bar polls it."""
        ...

    def actions(self) -> list[QueuedAction]:
        """Every action still in the outbox, oldest first."""
        ...

    def retry(self, action_id: int) -> None:
        """Send it again on the current state (a new idempotency key, no
        If-Match): the person decided their change should win."""
        ...

    def drop(self, action_id: int) -> None:
        """Forget it: the other person's change stands."""
        ...

    def send_now(self) -> None:
        """Try every waiting action now, without waiting for the backoff."""
        ...
