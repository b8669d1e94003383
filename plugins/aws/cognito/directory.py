"""The user directory (core.ports.user_directory) over a Cognito user pool.

A person is a Cognito user: the role is the one role group they are in (the
strongest, should an admin have put them in several), the organization the
``custom:organization`` attribute, "disabled" Cognito's own Enabled flag. The
user directory's role is therefore the one their next token carries; until
that token expires, the API takes the role from here (UserService.
effective_actor), so a demotion or a disabled account counts at once.

Cognito has no conditional writes. ``save`` compares the version it is given
with ``custom:version`` read just before and then writes: two admins editing
the same person in the same instant can both pass the check (see docs/aws.md,
Gaps). Listing is ListUsers page by page plus ListUsersInGroup per role
group, never one request per person.

The API asks ``get`` on every request (UserService.effective_actor). Cognito
allows an account about 120 user reads a second, so an entry may be kept for
``cache_s`` seconds (the aws backend: :data:`CACHE_S`); this directory's own
writes drop it at once, another process's count after at most that long.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from core.errors import ConcurrentModification, NotFound, ValidationError
from core.model.roles import Role
from core.model.users import UserAccount, validate_user_name
from core.ports.user_directory import UserDirectory
from plugins.aws.cognito.pool import (
    CREATED_BY_ATTRIBUTE,
    ORGANIZATION_ATTRIBUTE,
    ROLE_GROUPS,
    UPDATED_BY_ATTRIBUTE,
    VERSION_ATTRIBUTE,
)

log = logging.getLogger(__name__)

# Strongest first, as plugins/api/auth.py reads a token's groups.
_BY_STRENGTH = sorted(ROLE_GROUPS, key=ROLE_GROUPS.__getitem__)
MAX_PAGE = 60  # ListUsers and ListUsersInGroup answer at most 60 a page
CACHE_S = 10.0  # how long the aws backend keeps a person's entry between requests


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def strongest_role(groups: builtins.list[str]) -> Role | None:
    names = {g.strip().lower() for g in groups}
    return next((role for role in _BY_STRENGTH if role.value in names), None)


class CognitoUserDirectory(UserDirectory):
    def __init__(self, cognito: Any, user_pool_id: str, *, page_size: int = MAX_PAGE,
                 cache_s: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not user_pool_id:
            raise ValidationError("user_pool_id: the Cognito user pool of the stage is needed "
                                  "(SMARTIOT_USER_POOL_ID or the profile's user_pool_id)")
        self._cognito = cognito
        self._pool = user_pool_id
        self._page = max(1, min(page_size, MAX_PAGE))
        self._cache_s = cache_s
        self._clock = clock
        self._cache: dict[str, tuple[float, UserAccount | None]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reads
    def get(self, name: str) -> UserAccount | None:
        key = name.strip().lower()  # the pool's names are case-insensitive
        if self._cache_s > 0:
            with self._lock:
                held = self._cache.get(key)
            if held is not None and self._clock() - held[0] < self._cache_s:
                return held[1]
        found = self._read(name)
        if self._cache_s > 0:
            with self._lock:
                self._cache[key] = (self._clock(), found)
        return found

    def _forget(self, name: str) -> None:
        with self._lock:
            self._cache.pop(name.strip().lower(), None)

    def _read(self, name: str) -> UserAccount | None:
        try:
            user = self._cognito.admin_get_user(UserPoolId=self._pool, Username=name)
        except ClientError as exc:
            if _code(exc) == "UserNotFoundException":
                return None
            raise
        groups = [g["GroupName"] for g in self._pages(
            self._cognito.admin_list_groups_for_user, "Groups", "NextToken",
            Username=user["Username"])]
        role = strongest_role(groups)
        if role is None:
            log.warning("cognito user %s is in no role group (%s); not in the directory",
                        name, ", ".join(sorted(groups)) or "no groups")
            return None
        return _account(user["Username"], role, user.get("UserAttributes") or [], user)

    def list(self, organization: str = "") -> builtins.list[UserAccount]:
        roles: dict[str, Role] = {}
        for role in reversed(_BY_STRENGTH):  # the strongest written last wins
            for user in self._pages(self._cognito.list_users_in_group, "Users", "NextToken",
                                    GroupName=role.value):
                roles[user["Username"]] = role
        found = []
        for user in self._pages(self._cognito.list_users, "Users", "PaginationToken"):
            role_of = roles.get(user["Username"])
            if role_of is None:
                continue
            account = _account(user["Username"], role_of, user.get("Attributes") or [], user)
            if not organization or account.organization == organization:
                found.append(account)
        return sorted(found, key=lambda a: a.name)

    def _pages(self, call: Any, items: str, token_key: str, **params: Any
               ) -> Iterator[dict[str, Any]]:
        """Every item of a paged Cognito listing (the token's name differs:
        ListUsers says PaginationToken, the others NextToken)."""
        token = None
        while True:
            page = call(UserPoolId=self._pool, Limit=self._page,
                        **params, **({token_key: token} if token else {}))
            yield from page.get(items) or []
            token = page.get(token_key)
            if not token:
                return

    # ------------------------------------------------------------------ writes
    def add(self, account: UserAccount) -> UserAccount:
        """A Cognito user in the role's group. A name that is an e-mail address
        gets Cognito's invitation with a temporary password; anyone else needs
        an admin to set a temporary password (docs/aws.md)."""
        name = validate_user_name(account.name)
        attributes = [{"Name": ORGANIZATION_ATTRIBUTE, "Value": account.organization},
                      {"Name": VERSION_ATTRIBUTE, "Value": "1"},
                      {"Name": CREATED_BY_ATTRIBUTE, "Value": account.created_by},
                      {"Name": UPDATED_BY_ATTRIBUTE, "Value": account.updated_by}]
        invite: dict[str, Any] = {"MessageAction": "SUPPRESS"}
        if "@" in name:
            attributes += [{"Name": "email", "Value": name},
                           {"Name": "email_verified", "Value": "true"}]
            invite = {"DesiredDeliveryMediums": ["EMAIL"]}
        try:
            # Cognito keeps no empty values: an attribute left out reads as "".
            self._cognito.admin_create_user(
                UserPoolId=self._pool, Username=name,
                UserAttributes=[a for a in attributes if a["Value"]], **invite)
        except ClientError as exc:
            if _code(exc) == "UsernameExistsException":
                raise ConcurrentModification(f"user {name} already exists") from None
            raise
        try:
            self._join(name, account.role)
        except Exception:
            # Half a person (no role) would be invisible here but able to sign in.
            self._cognito.admin_delete_user(UserPoolId=self._pool, Username=name)
            raise
        return self._must_get(name)

    def save(self, account: UserAccount) -> UserAccount:
        self._forget(account.name)  # the version check reads the pool, not the cache
        try:
            return self._save(account)
        finally:
            self._forget(account.name)  # also when a write failed half-way

    def _save(self, account: UserAccount) -> UserAccount:
        current = self.get(account.name)
        if current is None:
            raise NotFound(f"user {account.name} does not exist")
        if account.version != current.version + 1:
            raise ConcurrentModification(
                f"user {account.name} changed since version {account.version - 1} (it is now "
                f"version {current.version}); read it again and retry",
                changed_by=current.updated_by or None)
        if account.role is not current.role:
            self._join(current.name, account.role)
        if account.disabled is not current.disabled:
            if account.disabled:
                self._cognito.admin_disable_user(UserPoolId=self._pool, Username=current.name)
                # Its refresh tokens stop working too: the person is signed out everywhere.
                self._cognito.admin_user_global_sign_out(UserPoolId=self._pool,
                                                         Username=current.name)
            else:
                self._cognito.admin_enable_user(UserPoolId=self._pool, Username=current.name)
        values = {ORGANIZATION_ATTRIBUTE: account.organization,
                  VERSION_ATTRIBUTE: str(account.version),
                  UPDATED_BY_ATTRIBUTE: account.updated_by}
        self._cognito.admin_update_user_attributes(
            UserPoolId=self._pool, Username=current.name,
            UserAttributes=[{"Name": k, "Value": v} for k, v in values.items() if v])
        held = {ORGANIZATION_ATTRIBUTE: current.organization,
                UPDATED_BY_ATTRIBUTE: current.updated_by}
        emptied = [k for k, v in values.items() if not v and held.get(k)]
        if emptied:
            self._cognito.admin_delete_user_attributes(
                UserPoolId=self._pool, Username=current.name, UserAttributeNames=emptied)
        return self._must_get(current.name)

    def set_password(self, name: str, password: str) -> None:
        """An admin's password for ``name`` (core.ports.user_directory.
        DirectoryPasswords): temporary, so Cognito asks the person for their
        own at the next sign-in (the sign-in dialog's new-password step), and
        every session of theirs ends."""
        current = self._must_get(name)
        try:
            self._cognito.admin_set_user_password(UserPoolId=self._pool, Username=current.name,
                                                  Password=password, Permanent=False)
        except ClientError as exc:
            if _code(exc) in ("InvalidPasswordException", "InvalidParameterException"):
                message = exc.response.get("Error", {}).get("Message", "")
                raise ValidationError(f"password: {message or 'refused by the password policy'}"
                                      ) from None
            raise
        self._cognito.admin_user_global_sign_out(UserPoolId=self._pool, Username=current.name)
        self._forget(current.name)

    def _join(self, name: str, role: Role) -> None:
        """In ``role``'s group and no other role group: the new group first, so
        the person is never left without a role in between."""
        self._cognito.admin_add_user_to_group(UserPoolId=self._pool, Username=name,
                                              GroupName=role.value)
        for other in ROLE_GROUPS:
            if other is not role:
                self._cognito.admin_remove_user_from_group(
                    UserPoolId=self._pool, Username=name, GroupName=other.value)

    def _must_get(self, name: str) -> UserAccount:
        self._forget(name)
        account = self.get(name)
        if account is None:
            raise NotFound(f"user {name} vanished from the user pool while being saved")
        return account


def _account(name: str, role: Role, attributes: builtins.list[dict[str, str]],
             user: dict[str, Any]) -> UserAccount:
    values = {a["Name"]: a.get("Value", "") for a in attributes}
    try:
        version = int(values.get(VERSION_ATTRIBUTE) or 1)
    except ValueError:
        version = 1
    created: datetime | None = user.get("UserCreateDate")
    updated: datetime | None = user.get("UserLastModifiedDate")
    return UserAccount(name, role, values.get(ORGANIZATION_ATTRIBUTE, ""),
                       disabled=not user.get("Enabled", True),
                       created_by=values.get(CREATED_BY_ATTRIBUTE, ""), created_at=created,
                       updated_by=values.get(UPDATED_BY_ATTRIBUTE, ""), updated_at=updated,
                       version=version)
