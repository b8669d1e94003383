"""Idempotency keys: a change sent twice (a retry after a lost answer, a
console's outbox after a restart) is applied once, and the second request gets
the first one's answer.

The REST API (plugins/api/idempotency.py) claims ``(caller, key)`` before it
runs a change, then stores the answer; the stores (SQL in core/store, DynamoDB
on AWS) only need one conditional write each, so two simultaneous duplicates
cannot both win the claim, whatever process or Lambda container they reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

# How long an answer is kept for retries (a console offline over a weekend
# still gets its answer... within a day; after that the key may be reused).
KEEP_FOR = timedelta(hours=24)
# A claim whose request died with its process (a crash, a Lambda timeout) is
# taken over after this long, instead of blocking the key until it expires.
LEASE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    caller: str  # who sent it: a key belongs to one person
    key: str  # the client's Idempotency-Key
    request: str  # "POST /alerts/a-1/acknowledge"
    body_hash: str  # SHA-256 of the body (hex)
    created_at: datetime
    expires_at: datetime
    locked_until: datetime  # while status is None: when another request may take over
    status: int | None = None  # None: still running
    response: str = ""  # the stored answer (JSON), once status is set

    @property
    def in_progress(self) -> bool:
        return self.status is None


class IdempotencyStore(Protocol):
    def claim(self, record: IdempotencyRecord, now: datetime) -> IdempotencyRecord | None:
        """Store ``record`` (in progress) unless ``(caller, key)`` is already
        held; returns the holder then, None when this request won the claim. A
        holder that expired, or whose lease ran out while still in progress,
        is replaced (conditionally: one of two racing takers wins)."""
        ...

    def complete(self, caller: str, key: str, status: int, response: str) -> None:
        """Keep the answer of a claimed request for its retries."""
        ...

    def release(self, caller: str, key: str) -> None:
        """Forget a claim whose request did not finish with an answer worth
        repeating (a fault, a refused token, throttling): a retry runs again."""
        ...
