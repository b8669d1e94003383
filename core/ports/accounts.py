"""What sign-in keeps in the backend beside the user directory: each
person's password hash and the refresh tokens handed out to them.

Refresh tokens are stored only as their SHA-256 (they are 256 random bits, so
a plain hash suffices): a copy of the table lets nobody sign in. Each token
belongs to a *family* (one sign-in and its rotations), so a token used twice
(stolen and replayed) revokes the whole sign-in.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    token_hash: str
    user: str
    family: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None
    client: str = ""


class AccountStore(ABC):
    @abstractmethod
    def password_hash(self, name: str) -> str | None:
        """The stored hash (None: no entry, or no password set yet)."""

    @abstractmethod
    def set_password_hash(self, name: str, encoded: str, changed_at: datetime) -> None:
        """NotFound when ``name`` has no directory entry."""

    @abstractmethod
    def add_refresh(self, record: RefreshRecord) -> None: ...

    @abstractmethod
    def use_refresh(self, token_hash: str, now: datetime) -> tuple[RefreshRecord | None, bool]:
        """The record and whether this call marked it used (False: unknown,
        already used, revoked; exactly one of two simultaneous calls wins)."""

    @abstractmethod
    def revoke_family(self, family: str, now: datetime) -> int: ...

    @abstractmethod
    def revoke_user(self, name: str, now: datetime) -> int:
        """Every live refresh token of ``name``: a disabled account or a new
        password signs the person out everywhere."""
