"""Who may do what. Checked in the service layer so the CLI, the GUI and
any plugin get the same answer; widgets only use it to grey out buttons."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from core.errors import PermissionDenied, ValidationError


class Role(enum.StrEnum):
    TECHNICIAN = "technician"
    SUPPORT = "support"
    ENGINEER = "engineer"
    ADMIN = "admin"

    @classmethod
    def parse(cls, value: str, where: str = "role") -> Role:
        try:
            return cls(value.strip().lower())
        except ValueError:
            allowed = ", ".join(r.value for r in cls)
            raise ValidationError(f"{where}: {value!r} is not one of {allowed}") from None


class Permission(enum.StrEnum):
    FIRMWARE_IMPORT = "firmware.import"
    FIRMWARE_DELETE = "firmware.delete"
    DEPLOYMENT_CREATE = "deployment.create"
    DEPLOYMENT_CANCEL = "deployment.cancel"
    DEPLOYMENT_CONTROL = "deployment.control"  # pause, resume, retry failed

    @property
    def action(self) -> str:
        """For messages: "may not <action>"."""
        return _ACTIONS[self]


_ACTIONS = {
    Permission.FIRMWARE_IMPORT: "import firmware",
    Permission.FIRMWARE_DELETE: "delete firmware",
    Permission.DEPLOYMENT_CREATE: "create deployments",
    Permission.DEPLOYMENT_CANCEL: "cancel deployments",
    Permission.DEPLOYMENT_CONTROL: "pause, resume or retry deployments",
}


_ENGINEERING = frozenset(Permission)

GRANTS: dict[Role, frozenset[Permission]] = {
    Role.TECHNICIAN: frozenset(),
    Role.SUPPORT: frozenset(),
    Role.ENGINEER: _ENGINEERING,
    Role.ADMIN: _ENGINEERING,
}


@dataclass(frozen=True, slots=True)
class Actor:
    """The person behind an action: recorded in the audit log and on deployments."""

    user: str
    role: Role

    def can(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            allowed = ", ".join(r.value for r, grants in GRANTS.items() if permission in grants)
            raise PermissionDenied(
                f"{self.user} ({self.role.value}) may not {permission.action}; "
                f"that needs the role {allowed.replace(', ', ' or ')}"
            )
