"""Per-person broker logins: the hub gives each signed-in person their own
broker account, limited by their role (read the fleet; publish commands and
desired state only for roles with ``device.command``), and removes it when
the person is disabled. The live feed of a console then connects as that
person, so the broker itself refuses what the role may not do."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from core.model.roles import Role


@dataclass(frozen=True, slots=True)
class BrokerLogin:
    url: str
    username: str
    password: str
    can_command: bool

    def __repr__(self) -> str:  # never print the password
        return (f"BrokerLogin(url={self.url!r}, username={self.username!r}, "
                f"can_command={self.can_command})")


class BrokerAccounts(ABC):
    @abstractmethod
    def provision(self, user: str, role: Role) -> BrokerLogin:
        """Create the person's broker account or give it a new password and
        the role's rights (a rotation: the old password stops working)."""

    @abstractmethod
    def remove(self, user: str) -> None:
        """Delete the account and disconnect its clients; no error if absent."""
