"""REST routes of users: oneself (``/users/me``, one's preferences) and the
admin's user directory (``/users``), through core.services.users: the role
check (``user.admin``), the organization's scope and the audit entries are
the use cases', the same the console and the CLI get."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, Protocol

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from core.errors import ConcurrentModification, NotFound, ValidationError
from core.model.roles import Actor
from core.model.users import UserAccount
from core.services.users import UserService
from plugins.api import models, shapes
from plugins.api.responses import envelope

RoleName = Literal["technician", "support", "engineer", "admin"]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, description="the name they sign in with")
    role: RoleName
    organization: str = Field(default="", max_length=128,
                              description="ignored when the caller belongs to an organization")
    password: str | None = Field(default=None, min_length=1, max_length=1024,
                                 description="initial password (where the server keeps "
                                 "accounts: the hub); the person can sign in at once")


class UserUpdate(BaseModel):
    """Fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    role: RoleName | None = None
    disabled: bool | None = None


class PasswordSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=1024)


class HasUsers(Protocol):
    """What these routes need of the API's services."""

    @property
    def users(self) -> UserService: ...


def user_json(u: UserAccount) -> dict[str, Any]:
    return {"name": u.name, "role": u.role.value, "organization": u.organization,
            "disabled": u.disabled, "created_by": u.created_by,
            "created_at": u.created_at.isoformat() if u.created_at else None,
            "updated_by": u.updated_by,
            "updated_at": u.updated_at.isoformat() if u.updated_at else None,
            "version": u.version}


def users_router(services: Callable[[], HasUsers], actor: Callable[[], Actor],
                 int_if_match: Callable[[], int | None]) -> Router:
    """``int_if_match`` reads a version from If-Match (None when absent)."""
    router = Router()

    @router.get("/users/me", summary="Who the API takes the caller for", tags=["users"])
    def me() -> Response[Any]:
        who = actor()
        users = services().users
        data = users.me(who)
        try:
            data["preferences"] = users.preferences(who).values
        except NotFound:
            data["preferences"] = None
        return envelope(data)

    @router.get("/users/me/preferences", summary="One's preferences (ETag: version)",
                tags=["users"])
    def get_preferences() -> Response[Any]:
        saved = services().users.preferences(actor())
        return envelope(shapes.preferences(saved), headers={"ETag": f'"{saved.version}"'})

    @router.put("/users/me/preferences",
                summary="Replace one's preferences (If-Match: version)", tags=["users"])
    def put_preferences(body: Annotated[models.PreferencesIn, Body()]) -> Response[Any]:
        saved = services().users.set_preferences(actor(), body.preferences,
                                                 expected_version=int_if_match())
        return envelope(shapes.preferences(saved), headers={"ETag": f'"{saved.version}"'})

    @router.get("/users", summary="The user directory (admins)", tags=["users"])
    def list_users() -> Response[Any]:
        items = [user_json(u) for u in services().users.list_users(actor())]
        return envelope({"items": items, "next": ""})

    @router.post("/users", summary="Add a user (admins)", tags=["users"])
    def add_user(body: Annotated[UserCreate, Body()]) -> Response[Any]:
        added = services().users.add_user(actor(), body.name, body.role, body.organization,
                                          body.password)
        return envelope(user_json(added), 201, {"ETag": f'"{added.version}"'})

    @router.put("/users/<name>", summary="Change a user's role, disable or enable (admins)",
                tags=["users"])
    def update_user(name: str, body: Annotated[UserUpdate, Body()]) -> Response[Any]:
        if body.role is None and body.disabled is None:
            raise ValidationError("body: give role, disabled or both")
        who = actor()
        users = services().users
        wanted = int_if_match()
        if wanted is not None:
            current = users.get_user(who, name)
            if current.version != wanted:
                raise ConcurrentModification(
                    f"user {name} changed since version {wanted} (now {current.version}); "
                    "read it again and retry", changed_by=current.updated_by or None)
        account = None
        if body.role is not None:
            account = users.set_role(who, name, body.role)
        if body.disabled is not None:
            account = users.set_disabled(who, name, body.disabled)
        assert account is not None
        return envelope(user_json(account), headers={"ETag": f'"{account.version}"'})

    @router.put("/users/<name>/password",
                summary="Set someone's password (admins); their sign-ins end", tags=["users"])
    def set_password(name: str, body: Annotated[PasswordSet, Body()]) -> Response[Any]:
        account = services().users.set_password(actor(), name, body.password)
        return envelope(user_json(account), headers={"ETag": f'"{account.version}"'})

    return router
