"""The code-signing public keys a team's fleet trusts.

One trust model for a team: the keys live in the shared database, an admin
adds and revokes them, each engineer signs with their own key, and the
library names the owner of the key that signed each image. A revoked key
stays in the table (who added it, who revoked it, when) so an image it signed
can still say whose it was and why it is no longer trusted.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TrustedKey:
    key_id: str
    owner: str  # the person who signs with it
    public_pem: bytes
    added_by: str
    added_at: datetime
    revoked_by: str | None = None
    revoked_at: datetime | None = None
    note: str = ""

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class TrustedKeyStore(ABC):
    @abstractmethod
    def add(self, key: TrustedKey) -> None:
        """ValidationError when the key id is already in the table (even revoked:
        a revoked key is not quietly trusted again)."""

    @abstractmethod
    def get(self, key_id: str) -> TrustedKey:
        """NotFound when unknown."""

    @abstractmethod
    def list(self, *, include_revoked: bool = False) -> builtins.list[TrustedKey]: ...

    @abstractmethod
    def revoke(self, key_id: str, by: str, at: datetime) -> TrustedKey:
        """NotFound when unknown; ValidationError when already revoked."""
