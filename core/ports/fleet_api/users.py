"""The users use cases as a front end sees them (see core.ports.fleet_api):
oneself (who the backend takes one for, one's preferences) and, for admins,
the user directory."""

from __future__ import annotations

import builtins
from typing import Any, Protocol

from core.model.roles import Role
from core.model.users import UserAccount
from core.ports.preferences import Preferences


class UsersApi(Protocol):
    def me(self) -> dict[str, Any]:
        """User, role, organization and the role's permissions."""
        ...

    def preferences(self) -> Preferences: ...

    def set_preferences(self, values: dict[str, Any],
                        expected_version: int | None = None) -> Preferences:
        """Replace one's preferences; ConcurrentModification on a stale version."""
        ...

    def list(self) -> builtins.list[UserAccount]:
        """The directory (one's organization's people), by name; admins only."""
        ...

    def get(self, name: str) -> UserAccount: ...

    def add(self, name: str, role: Role | str, organization: str = "",
            password: str | None = None) -> UserAccount:
        """Add a person; an admin in an organization adds into it. With a
        password (where the backend keeps them) they can sign in at once."""
        ...

    def set_password(self, name: str, password: str) -> UserAccount:
        """An admin sets someone's password; their sign-ins end."""
        ...

    def set_role(self, name: str, role: Role | str) -> UserAccount: ...

    def set_disabled(self, name: str, disabled: bool) -> UserAccount: ...
