"""A person in the user directory: the name they sign in with, the role and
organization an admin gave them, and whether their account is disabled.

The directory says who may work on the fleet and with what role; it does not
authenticate anyone. Per-person passwords or tokens attach to these entries
later (the team set-up's sign-in, Cognito on AWS): that is the seam.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from core.errors import ValidationError
from core.model.roles import Role

# OS account names, e-mail style Cognito user names, and "first.last".
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


def validate_user_name(name: str, where: str = "name") -> str:
    cleaned = name.strip()
    if not _NAME.match(cleaned):
        raise ValidationError(f"{where}: {name!r} is not a user name (1-128 letters, digits "
                              "and . _ @ + -, starting with a letter or digit)")
    return cleaned


@dataclass(frozen=True, slots=True)
class UserAccount:
    name: str
    role: Role
    organization: str = ""
    disabled: bool = False
    created_by: str = ""
    created_at: datetime | None = None
    updated_by: str = ""
    updated_at: datetime | None = None
    version: int = 1
