"""The user directory port: who may work on the fleet, with which role, in
which organization (core.model.users). Kept by the backend so every console,
the CLI and the REST API read the same list."""

from __future__ import annotations

from abc import ABC, abstractmethod

from core.model.users import UserAccount


class UserDirectory(ABC):
    @abstractmethod
    def get(self, name: str) -> UserAccount | None: ...

    @abstractmethod
    def list(self, organization: str = "") -> list[UserAccount]:
        """By name; only ``organization``'s people when one is given."""

    @abstractmethod
    def add(self, account: UserAccount) -> UserAccount:
        """ConcurrentModification when the name is taken."""

    @abstractmethod
    def save(self, account: UserAccount) -> UserAccount:
        """Store ``account`` (its ``version`` the one read plus one); refused with
        ConcurrentModification when someone saved it in between."""
