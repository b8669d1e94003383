"""One demo user per role in the sandbox's Cognito user pool.

Each run makes fresh random passwords (printed once, never stored): the
sandbox is on loopback, but a password known from the docs would still be a
habit worth not teaching. The users are in the group named after their role,
which is where the API's authorizer reads the role from (``cognito:groups``).
The user pool is new on every start (moto keeps nothing between runs), so
the users are always created, never found."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from core.model.roles import Role

DEMO_USERS = {
    Role.TECHNICIAN: "tina.technician",
    Role.SUPPORT: "sam.support",
    Role.ENGINEER: "erin.engineer",
    Role.ADMIN: "ada.admin",
}
DEMO_ORGANIZATION = "demo"


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: str

    def as_dict(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password, "role": self.role}


def demo_password() -> str:
    # Upper, lower and a digit whatever the random part is: the pool's policy.
    return f"Sandbox-{secrets.token_urlsafe(9)}-7q"


def create_demo_users(idp: Any, user_pool_id: str,
                      organization: str = DEMO_ORGANIZATION) -> list[DemoUser]:
    """One confirmed user per role, in the role's group and ``organization``
    (plugins.aws.cognito.pool: the attributes the authorizer reads)."""
    from plugins.aws.cognito.pool import add_user_with_password

    users = []
    for role, username in DEMO_USERS.items():
        password = demo_password()
        add_user_with_password(idp, user_pool_id, username, role, organization, password)
        users.append(DemoUser(username, password, role.value))
    return users
