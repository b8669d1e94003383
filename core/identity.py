"""Who is acting: resolved once at start-up, never taken from a flag.

In the one-process set-up (the ``local`` profile: the hub runs inside the
console over the SQLite file in the person's own data dir) the person at the
keyboard owns the data, and the operating system has already authenticated
them: the identity is the OS account (the name of the process's real user id,
never ``LOGNAME``/``USER``, which anyone can set) and the role
defaults to ``admin``.

A user name from the config file, ``SMARTIOT_USER`` or ``--user`` is a claim,
not an identity. Actions are recorded under the OS account; the claimed name
is kept beside it (``claimed_user`` in every audit entry) so an auditor sees
that someone tried to act under another name, and nobody can make the trail
say "maria" by typing it. A role asked for (``role`` in the file or
``SMARTIOT_ROLE``) is honoured: the data belongs to the person anyway, so a
lower role is a choice to work with less power (to see what support sees),
and every audit entry records the role that allowed it.

Set-ups where several people share one database (``lab``, a team's
PostgreSQL) have no authentication yet: the OS account name and the role are
what each machine says. Authenticated per-person identities for the team
set-up come with the hub's REST API (docs/security.md, "Threat model").
"""

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING

from core.model.roles import Actor, Role

if TYPE_CHECKING:
    from core.config import Config, Profile

FALLBACK_USER = "operator"


def os_account() -> str:
    """The name the operating system knows the person by.

    Taken from the real user id, not from ``getpass.getuser()``: that reads
    ``LOGNAME``/``USER`` first, so ``LOGNAME=maria smartiot ...`` would make the
    audit trail name maria. Windows has no uid; there the logged-on account comes
    from the OS (``GetUserNameW``), with ``getpass`` only if that fails."""
    try:
        name = _account_name()
    except Exception:  # noqa: BLE001 - no passwd entry (containers) or no login at all
        return FALLBACK_USER
    return name.strip() or FALLBACK_USER


def _account_name() -> str:
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        try:
            import ctypes

            size = ctypes.c_ulong(257)
            buffer = ctypes.create_unicode_buffer(size.value)
            if ctypes.windll.advapi32.GetUserNameW(buffer, ctypes.byref(size)):  # type: ignore[attr-defined]
                return str(buffer.value)
        except Exception:  # noqa: BLE001 - fall back to the session's own name
            pass
        return getpass.getuser()
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def is_one_process(profile: Profile) -> bool:
    """The console runs its own hub over the default SQLite file: nobody else's data."""
    return profile.backend == "local" and profile.hub and not profile.database


def default_role(profile: Profile) -> Role:
    return Role.ADMIN if is_one_process(profile) else Role.ENGINEER


def resolve_actor(config: Config, *, account: str | None = None) -> Actor:
    user = account if account is not None else os_account()
    claimed = config.user.strip()
    role = Role.parse(config.role, "role") if config.role else default_role(config.profile)
    # The one-process console owns its whole database (its demo fleet, devices
    # that announced themselves under any organization): no organization, so
    # the use cases limit nothing. A team console acts within its profile's.
    organization = "" if is_one_process(config.profile) else config.profile.organization
    return Actor(user=user, role=role, organization=organization,
                 claimed_user=claimed if claimed and claimed != user else "")


def local_owner() -> Actor:
    """The one-process set-up's owner, for widgets built without an AppContext
    (embedding, tests); a page built from a context uses ``context.actor``."""
    return Actor(user=os_account(), role=Role.ADMIN)
