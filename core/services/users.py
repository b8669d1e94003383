"""What people ask about themselves, and the admin's user directory.

**Oneself.** Who the backend takes the person for (user, role, organization
and what that role allows) and their stored preferences. Every role may read
and change its own preferences and nobody else's: the user comes from the
Actor, never from the request. Changes are audited like any other action, so
an auditor sees when someone's settings changed.

**The directory** (``user.admin``, admins only): list the people who may work
on the fleet, add one (name, role, organization), change a role, disable and
enable an account. An admin with an organization manages only that
organization's people and adds people into it. Every change is audited, and
so is every refused attempt.

**Passwords** (where the backend keeps accounts: the hub's store): an admin
sets a person's initial password (``add_user(..., password=)``,
``set_password``); the hash is argon2id (core.crypto.passwords) and never
leaves the store. A new password, or disabling the account, ends every
sign-in of that person (their refresh tokens are revoked) and disabling
removes their broker account, so the broker refuses them too. Signing in
itself is core.services.accounts.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from core.crypto.passwords import hash_password
from core.errors import NotFound, PermissionDenied, ValidationError
from core.model.roles import GRANTS, Actor, Permission, Role
from core.model.timeutil import utcnow
from core.model.users import UserAccount, validate_user_name
from core.ports.accounts import AccountStore
from core.ports.broker_accounts import BrokerAccounts
from core.ports.hub import AuditTrail
from core.ports.preferences import Preferences, PreferenceStore
from core.ports.user_directory import DirectoryPasswords, UserDirectory
from core.services.access import authorize, record_action

if TYPE_CHECKING:
    from core.services.wiring import Services

MAX_PREFERENCES_BYTES = 16 * 1024


class UserService:
    def __init__(self, preferences: PreferenceStore | None,
                 audit: AuditTrail | None = None, *,
                 directory: UserDirectory | None = None,
                 accounts: AccountStore | None = None,
                 broker_accounts: BrokerAccounts | None = None) -> None:
        self._preferences = preferences
        self._audit = audit
        self._directory = directory
        self._accounts = accounts
        self._broker_accounts = broker_accounts

    # ------------------------------------------------------------------ oneself
    def me(self, actor: Actor) -> dict[str, Any]:
        return {"user": actor.user, "role": actor.role.value,
                "organization": actor.organization,
                "permissions": sorted(p.value for p in GRANTS[actor.role])}

    def preferences(self, actor: Actor) -> Preferences:
        return self._store().get(actor.user)

    def set_preferences(self, actor: Actor, values: dict[str, Any], *,
                        expected_version: int | None = None) -> Preferences:
        size = len(json.dumps(values, ensure_ascii=False).encode())
        if size > MAX_PREFERENCES_BYTES:
            raise ValidationError(f"preferences: {size} bytes is more than "
                                  f"{MAX_PREFERENCES_BYTES}")
        saved = self._store().save(actor.user, values, expected_version=expected_version)
        record_action(self._audit, actor, "user.preferences", actor.user,
                      {"keys": sorted(values), "version": saved.version})
        return saved

    def _store(self) -> PreferenceStore:
        if self._preferences is None:
            raise NotFound("this backend keeps no preferences")
        return self._preferences

    # ------------------------------------------------------------------ directory
    def list_users(self, actor: Actor) -> list[UserAccount]:
        authorize(self._audit, actor, Permission.USER_ADMIN, "user.list", "users")
        return self._users().list(actor.organization)

    def get_user(self, actor: Actor, name: str) -> UserAccount:
        authorize(self._audit, actor, Permission.USER_ADMIN, "user.get", name)
        return self._visible(actor, name)

    def add_user(self, actor: Actor, name: str, role: Role | str,
                 organization: str = "", password: str | None = None) -> UserAccount:
        """An admin in an organization adds people into it, whatever was asked.
        With ``password`` the person can sign in at once (it is checked before
        anything is stored, so a weak one adds nobody)."""
        subject = name.strip() or "?"
        authorize(self._audit, actor, Permission.USER_ADMIN, "user.add", subject,
                  {"new_role": str(getattr(role, "value", role))})
        name = validate_user_name(name)
        parsed = role if isinstance(role, Role) else Role.parse(role, "role")
        org = actor.organization or organization.strip()
        encoded = None
        provider = self._provider_passwords()
        if password is not None and provider is None:
            self._account_store()
            encoded = hash_password(password)
        account = self._users().add(UserAccount(
            name, parsed, org, created_by=actor.user, updated_by=actor.user,
            created_at=utcnow(), updated_at=utcnow()))
        if encoded is not None:
            self._account_store().set_password_hash(name, encoded, utcnow())
        elif password is not None and provider is not None:
            provider.set_password(name, password)
        record_action(self._audit, actor, "user.add", name,
                      {"new_role": parsed.value, "user_organization": org,
                       "password_set": password is not None})
        return account

    def set_password(self, actor: Actor, name: str, password: str) -> UserAccount:
        """An admin sets someone's password (the initial one, or a reset): the
        person's current sign-ins end. People change their own through
        core.services.accounts, proving the current password."""
        authorize(self._audit, actor, Permission.USER_ADMIN, "user.password", name)
        current = self._visible(actor, name)
        provider = self._provider_passwords()
        if provider is not None:  # the identity provider keeps it and ends the sessions
            provider.set_password(current.name, password)
            record_action(self._audit, actor, "user.password", current.name,
                          {"signed_out": "all", "temporary": True})
            return current
        encoded = hash_password(password)
        now = utcnow()
        store = self._account_store()
        store.set_password_hash(current.name, encoded, now)
        ended = store.revoke_user(current.name, now)
        record_action(self._audit, actor, "user.password", current.name, {"signed_out": ended})
        return current

    def has_password(self, actor: Actor, name: str) -> bool:
        authorize(self._audit, actor, Permission.USER_ADMIN, "user.get", name)
        current = self._visible(actor, name)
        return self._accounts is not None and \
            self._accounts.password_hash(current.name) is not None

    def set_role(self, actor: Actor, name: str, role: Role | str) -> UserAccount:
        authorize(self._audit, actor, Permission.USER_ADMIN, "user.role", name,
                  {"new_role": str(getattr(role, "value", role))})
        parsed = role if isinstance(role, Role) else Role.parse(role, "role")
        current = self._visible(actor, name)
        if name == actor.user and parsed is not current.role:
            # The directory's role wins for its people: an admin lowering their
            # own would lock every admin out of the directory they manage.
            raise ValidationError(f"{name}: an admin cannot change their own role")
        if current.role is parsed:
            return current
        saved = self._users().save(replace(current, role=parsed, updated_by=actor.user,
                                           version=current.version + 1))
        record_action(self._audit, actor, "user.role", name,
                      {"old_role": current.role.value, "new_role": parsed.value})
        return saved

    def set_disabled(self, actor: Actor, name: str, disabled: bool) -> UserAccount:
        action = "user.disable" if disabled else "user.enable"
        authorize(self._audit, actor, Permission.USER_ADMIN, action, name)
        current = self._visible(actor, name)
        if disabled and name == actor.user:
            raise ValidationError(f"{name}: an admin cannot disable their own account")
        if current.disabled is disabled:
            return current
        saved = self._users().save(replace(current, disabled=disabled, updated_by=actor.user,
                                           version=current.version + 1))
        details: dict[str, Any] = {}
        if disabled:
            details = self._cut_off(name)
        record_action(self._audit, actor, action, name, details)
        return saved

    def _cut_off(self, name: str) -> dict[str, Any]:
        """A disabled person's sign-ins end and their broker account goes, so
        neither the API nor the broker lets them in until enabled again."""
        details: dict[str, Any] = {}
        if self._accounts is not None:
            details["signed_out"] = self._accounts.revoke_user(name, utcnow())
        if self._broker_accounts is not None:
            self._broker_accounts.remove(name)
            details["broker_access"] = "removed"
        return details

    def _provider_passwords(self) -> DirectoryPasswords | None:
        """The directory, where it keeps passwords itself and no AccountStore
        is configured (Cognito on AWS)."""
        if self._accounts is None and isinstance(self._directory, DirectoryPasswords):
            return self._directory
        return None

    def _account_store(self) -> AccountStore:
        if self._accounts is None:
            raise NotFound("this backend keeps no passwords: people sign in through its own "
                           "identity provider")
        return self._accounts

    def effective_actor(self, actor: Actor) -> Actor:
        """The actor as the directory knows them: a person with an entry acts
        with the entry's role and organization (the claim noted as before);
        a disabled entry is refused. Without an entry (or a directory) the
        actor is unchanged: the one-process console's owner keeps acting as
        the OS account, as core.identity resolved."""
        if self._directory is None:
            return actor
        entry = self._directory.get(actor.user)
        if entry is None:
            return actor
        if entry.disabled:
            raise PermissionDenied(f"the account {actor.user} is disabled; an admin can "
                                   "enable it again")
        return replace(actor, role=entry.role, organization=entry.organization)

    def _users(self) -> UserDirectory:
        if self._directory is None:
            raise NotFound("this backend keeps no user directory")
        return self._directory

    def _visible(self, actor: Actor, name: str) -> UserAccount:
        """Another organization's person is unknown, not forbidden."""
        account = self._users().get(name)
        if account is None or (actor.organization
                               and account.organization != actor.organization):
            raise NotFound(f"user {name} does not exist")
        return account


class UsersSession:
    """The users use cases for one person (core.ports.fleet_api.UsersApi)."""

    def __init__(self, services: Services, actor: Actor) -> None:
        self._service: UserService = services.users
        self._actor = actor

    def me(self) -> dict[str, Any]:
        return self._service.me(self._actor)

    def preferences(self) -> Preferences:
        return self._service.preferences(self._actor)

    def set_preferences(self, values: dict[str, Any],
                        expected_version: int | None = None) -> Preferences:
        return self._service.set_preferences(self._actor, values,
                                             expected_version=expected_version)

    def list(self) -> builtins.list[UserAccount]:
        return self._service.list_users(self._actor)

    def get(self, name: str) -> UserAccount:
        return self._service.get_user(self._actor, name)

    def add(self, name: str, role: Role | str, organization: str = "",
            password: str | None = None) -> UserAccount:
        return self._service.add_user(self._actor, name, role, organization, password)

    def set_password(self, name: str, password: str) -> UserAccount:
        return self._service.set_password(self._actor, name, password)

    def set_role(self, name: str, role: Role | str) -> UserAccount:
        return self._service.set_role(self._actor, name, role)

    def set_disabled(self, name: str, disabled: bool) -> UserAccount:
        return self._service.set_disabled(self._actor, name, disabled)
