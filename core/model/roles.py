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
    ALERT_HANDLE = "alert.handle"  # acknowledge, resolve, snooze, reopen
    RULE_EDIT = "rule.edit"  # add, edit, delete alert rules
    DEVICE_REGISTER = "device.register"
    DEVICE_UPDATE = "device.update"  # name, tags, location
    DEVICE_DECOMMISSION = "device.decommission"
    DEVICE_DELETE = "device.delete"
    DEVICE_COMMAND = "device.command"  # ping, identify, reboot, set-interval, ...
    DESIRED_STATE = "device.desired"  # shadow desired-state edits
    FIRMWARE_IMPORT = "firmware.import"
    FIRMWARE_DELETE = "firmware.delete"
    DEPLOYMENT_CREATE = "deployment.create"
    DEPLOYMENT_CANCEL = "deployment.cancel"
    DEPLOYMENT_CONTROL = "deployment.control"  # pause, resume, retry failed
    AUDIT_READ = "audit.read"  # list, verify, export the audit trail
    SIGNING_KEYS = "firmware.keys"  # add and revoke the code-signing keys the fleet trusts
    USER_ADMIN = "user.admin"  # list, add, change the role of, disable and enable users

    @property
    def action(self) -> str:
        """For messages: "may not <action>"."""
        return _ACTIONS[self]


_ACTIONS = {
    Permission.ALERT_HANDLE: "acknowledge, resolve, snooze or reopen alerts",
    Permission.RULE_EDIT: "add, edit or delete alert rules",
    Permission.DEVICE_REGISTER: "register devices",
    Permission.DEVICE_UPDATE: "edit devices",
    Permission.DEVICE_DECOMMISSION: "decommission devices",
    Permission.DEVICE_DELETE: "delete devices",
    Permission.DEVICE_COMMAND: "send commands to devices",
    Permission.DESIRED_STATE: "change a device's desired state",
    Permission.FIRMWARE_IMPORT: "import firmware",
    Permission.FIRMWARE_DELETE: "delete firmware",
    Permission.DEPLOYMENT_CREATE: "create deployments",
    Permission.DEPLOYMENT_CANCEL: "cancel deployments",
    Permission.DEPLOYMENT_CONTROL: "pause, resume or retry deployments",
    Permission.AUDIT_READ: "read or export the audit trail",
    Permission.SIGNING_KEYS: "add or revoke trusted code-signing keys",
    Permission.USER_ADMIN: "list, add, disable or enable users and change their roles",
}

# Field work (install, check, restart) for technicians; the alert queue for
# support; everything that changes how devices behave for engineers; deleting
# records, which signing keys the fleet trusts, who may work on it (the user
# directory), and nothing held back for admins. docs/security.md shows this
# table and a test keeps the two in step.
GRANTS: dict[Role, frozenset[Permission]] = {
    Role.TECHNICIAN: frozenset({
        Permission.ALERT_HANDLE, Permission.DEVICE_REGISTER, Permission.DEVICE_UPDATE,
        Permission.DEVICE_COMMAND,
    }),
    Role.SUPPORT: frozenset({Permission.ALERT_HANDLE}),
    Role.ENGINEER: frozenset(Permission) - {Permission.DEVICE_DELETE, Permission.SIGNING_KEYS,
                                            Permission.USER_ADMIN},
    Role.ADMIN: frozenset(Permission),
}


@dataclass(frozen=True, slots=True)
class Actor:
    """The person behind an action: recorded in the audit log and on deployments.

    ``claimed_user`` keeps a user name someone asked to act as (config file,
    ``SMARTIOT_USER``, ``--user``) when it differs from the identity: it is
    written next to the real identity in every audit entry, never instead of it.
    """

    user: str
    role: Role
    organization: str = ""
    claimed_user: str = ""

    def can(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise PermissionDenied(self.denial(permission))

    def denial(self, permission: Permission) -> str:
        allowed = [r.value for r, grants in GRANTS.items() if permission in grants]
        return (f"{self.user} ({self.role.value}) may not {permission.action}; "
                f"that needs the role {' or '.join(allowed)}")

    def audit_details(self) -> dict[str, str]:
        """What every audit entry says about who acted, besides the user name."""
        details = {"role": self.role.value}
        if self.organization:
            details["organization"] = self.organization
        if self.claimed_user:
            details["claimed_user"] = self.claimed_user
        return details


def role_table_markdown() -> str:
    """The "What each role may do" table of docs/security.md; a test keeps the
    document equal to this, so the page cannot drift from the grants."""
    roles = list(Role)
    lines = ["| permission | what it allows | " + " | ".join(r.value for r in roles) + " |",
             "|---|---|" + "---|" * len(roles)]
    for permission in Permission:
        marks = " | ".join("yes" if permission in GRANTS[r] else "—" for r in roles)
        lines.append(f"| `{permission.value}` | {permission.action} | {marks} |")
    return "\n".join(lines)
