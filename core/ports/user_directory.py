"""The user directory port: who may work on the fleet, with which role, in
which organization (core.model.users). Kept by the backend so every console,
the CLI and the REST API read the same list."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class DirectoryPasswords(Protocol):
    """A directory that keeps passwords itself (an identity provider such as
    Cognito), so an admin's password for someone goes to it in the clear,
    not as a hash to an AccountStore."""

    def set_password(self, name: str, password: str) -> None:
        """A temporary password the person replaces at their next sign-in;
        their current sessions end. ValidationError when the provider's
        password policy refuses it."""
