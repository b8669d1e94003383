"""The user directory over a Cognito user pool (moto's server over HTTP):
people are users, roles are groups, the organization a custom attribute;
listings follow every page; edits are versioned; the aws backend's
UserService uses it, so an admin manages people and the audit trail says so."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.errors import ConcurrentModification, NotFound, PermissionDenied
from core.model.roles import Actor, Role
from core.model.users import UserAccount
from core.ports.audit import AuditFilter
from plugins.api.wiring import build_api_services
from plugins.aws.backend import build_aws_backend_for
from plugins.aws.cognito.directory import CognitoUserDirectory
from plugins.aws.cognito.signin import AccountDisabled, SessionEnded, Tokens
from plugins.aws.dynamodb.audit import DynamoAuditTrail
from tests.integration.aws.cognito_pool import (
    ORG,
    PASSWORD,
    USERS,
    CognitoStage,
)
from tests.integration.aws.conftest import record_calls


def _directory(stage: CognitoStage, page_size: int = 2) -> CognitoUserDirectory:
    return CognitoUserDirectory(stage.admin, stage.settings.user_pool_id, page_size=page_size)


def test_listing_follows_every_page_and_reads_roles_from_groups(cognito: CognitoStage) -> None:
    directory = _directory(cognito)
    for i in range(5):
        directory.add(UserAccount(f"field-{i}", Role.TECHNICIAN, "globex", created_by="ada",
                                  updated_by="ada"))
    cognito.admin.admin_add_user_to_group(UserPoolId=cognito.settings.user_pool_id,
                                          Username="field-0", GroupName="engineer")
    calls = record_calls(cognito.admin, "cognito-idp")

    everyone = directory.list()

    assert [a.name for a in everyone] == sorted([*USERS.values(), *(f"field-{i}"
                                                                    for i in range(5))])
    roles = {a.name: a.role for a in everyone}
    assert roles["ada"] is Role.ADMIN and roles["tom"] is Role.TECHNICIAN
    assert roles["field-0"] is Role.ENGINEER  # in two role groups: the stronger counts
    users_pages = calls.named("ListUsers")
    assert len(users_pages) == 5 and all(p["Limit"] == 2 for p in users_pages)
    assert "PaginationToken" not in users_pages[0]
    assert all("PaginationToken" in p for p in users_pages[1:])
    technicians = [p for p in calls.named("ListUsersInGroup") if p["GroupName"] == "technician"]
    assert len(technicians) == 3 and all("NextToken" in p for p in technicians[1:])
    assert calls.operations == {"ListUsers", "ListUsersInGroup"}  # no request per person

    assert [a.name for a in directory.list(ORG)] == sorted(USERS.values())
    assert {a.organization for a in directory.list("globex")} == {"globex"}


def test_add_get_save_with_versions(cognito: CognitoStage) -> None:
    directory = _directory(cognito)
    added = directory.add(UserAccount("kim", Role.SUPPORT, ORG, created_by="ada",
                                      updated_by="ada"))
    assert (added.role, added.organization, added.version, added.disabled) == \
        (Role.SUPPORT, ORG, 1, False)
    assert added.created_by == "ada" and added.created_at is not None
    with pytest.raises(ConcurrentModification, match="already exists"):
        directory.add(UserAccount("kim", Role.ADMIN, ORG))

    promoted = directory.save(replace(added, role=Role.ENGINEER, updated_by="bob", version=2))
    assert (promoted.role, promoted.version, promoted.updated_by) == (Role.ENGINEER, 2, "bob")
    groups = cognito.admin.admin_list_groups_for_user(
        UserPoolId=cognito.settings.user_pool_id, Username="kim")["Groups"]
    assert [g["GroupName"] for g in groups] == ["engineer"]  # out of support

    with pytest.raises(ConcurrentModification, match="now version 2"):
        directory.save(replace(added, disabled=True, version=2))  # read before the promotion
    assert directory.get("kim") == promoted
    with pytest.raises(NotFound):
        directory.save(UserAccount("nobody", Role.SUPPORT, version=2))
    assert directory.get("nobody") is None


def test_a_user_in_no_role_group_is_not_in_the_directory(cognito: CognitoStage) -> None:
    cognito.admin.admin_create_user(UserPoolId=cognito.settings.user_pool_id,
                                    Username="loose", MessageAction="SUPPRESS")
    directory = _directory(cognito)
    assert directory.get("loose") is None
    assert "loose" not in [a.name for a in directory.list()]


def test_disabling_signs_the_person_out_and_refuses_sign_in(cognito: CognitoStage) -> None:
    tokens = cognito.tokens(Role.SUPPORT)
    directory = _directory(cognito)
    current = directory.get("sue")
    assert current is not None
    disabled = directory.save(replace(current, disabled=True, version=current.version + 1))
    assert disabled.disabled

    signin = cognito.sign_in()
    with pytest.raises(AccountDisabled, match="sue is disabled"):
        signin.sign_in("sue", PASSWORD)
    with pytest.raises(SessionEnded, match="sign in again"):
        signin.refresh(tokens)

    directory.save(replace(disabled, disabled=False, version=disabled.version + 1))
    assert isinstance(signin.sign_in("sue", PASSWORD), Tokens)


def test_the_aws_backend_manages_people_in_the_pool(cognito: CognitoStage) -> None:
    backend = build_aws_backend_for(cognito.settings)
    assert isinstance(backend.users, CognitoUserDirectory)
    users = build_api_services(backend).users
    ada = Actor("ada", Role.ADMIN, ORG)

    users.add_user(ada, "ned", "engineer", "ignored-org")
    users.set_role(ada, "ned", Role.SUPPORT)
    users.set_disabled(ada, "ned", True)
    with pytest.raises(PermissionDenied):
        users.add_user(Actor("eve", Role.ENGINEER, ORG), "mal", Role.ADMIN)

    ned = _directory(cognito).get("ned")
    assert ned is not None
    assert (ned.role, ned.organization, ned.disabled, ned.version) == \
        (Role.SUPPORT, ORG, True, 3)  # added into the admin's organization
    # The token still says engineer; the directory's word counts, and disabled is refused.
    with pytest.raises(PermissionDenied, match="disabled"):
        users.effective_actor(Actor("ned", Role.ENGINEER, ORG))
    assert users.effective_actor(Actor("tom", Role.ADMIN, "other")) == \
        Actor("tom", Role.TECHNICIAN, ORG)
    assert isinstance(backend.audit, DynamoAuditTrail)
    trail = backend.audit.search(AuditFilter(action="user."))
    assert [(e.action, e.subject, e.details.get("outcome", "ok")) for e in trail] == [
        ("user.add", "ned", "ok"), ("user.role", "ned", "ok"), ("user.disable", "ned", "ok"),
        ("user.add", "mal", "denied")]


def test_entries_are_kept_briefly_and_own_writes_show_at_once(cognito: CognitoStage) -> None:
    """The API reads the pool on every request; Cognito allows an account about
    120 user reads a second, so the aws backend keeps an entry a few seconds."""
    now = [0.0]
    cached = CognitoUserDirectory(cognito.admin, cognito.settings.user_pool_id,
                                  cache_s=10, clock=lambda: now[0])
    calls = record_calls(cognito.admin, "cognito-idp")
    tom = cached.get("tom")
    assert tom is not None and cached.get("TOM") == tom
    assert len(calls.named("AdminGetUser")) == 1

    promoted = cached.save(replace(tom, role=Role.ENGINEER, version=tom.version + 1))
    assert cached.get("tom") == promoted  # its own write: no stale role

    other = _directory(cognito)  # another container demotes him
    other.save(replace(promoted, role=Role.SUPPORT, version=promoted.version + 1))
    now[0] = 9.0
    assert cached.get("tom") == promoted  # at most cache_s behind ...
    now[0] = 10.5
    fresh = cached.get("tom")
    assert fresh is not None and fresh.role is Role.SUPPORT  # ... then the pool's word
    assert build_aws_backend_for(cognito.settings).users._cache_s > 0  # type: ignore[union-attr]
