"""What the service tests of every area share: a store-backed fleet whose
session is the one every front end uses, its audit trail read back per
person, and the role check each use case goes through (granted: done and
audited; not granted: PermissionDenied naming the person, audited as denied)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import pytest

from core.errors import PermissionDenied
from core.model.roles import GRANTS, Actor, Permission, Role
from core.ports.backend import Backend
from core.services.session import LocalFleetApi
from core.services.wiring import build_services
from core.store import Store

Api = TypeVar("Api")


@dataclass
class AreaFleet:
    store: Store
    backend: Backend

    def api(self, role: Role, organization: str = "acme", user: str = "") -> LocalFleetApi:
        """The session of ``user`` (by default "<role>-1") in ``organization``."""
        actor = Actor(user or f"{role.value}-1", role, organization)
        return LocalFleetApi(build_services(self.backend), actor)

    def audit(self, user: str) -> list[tuple[str, str, str]]:
        return [(e.action, e.subject, e.details.get("outcome", "done"))
                for e in self.store.audit.entries() if e.actor == user]


@dataclass(frozen=True)
class UseCase(Generic[Api]):
    action: str
    permission: Permission
    subject: str
    call: Callable[[Api], object]


def run_as(fleet: AreaFleet, role: Role, case: UseCase[Api], api: Api) -> bool:
    """Runs ``case`` as the role's person ("<role>-1"); True if the role holds
    the grant and the change went through, False if it was refused (the caller
    then checks that nothing changed)."""
    user = f"{role.value}-1"
    if case.permission in GRANTS[role]:
        case.call(api)
        audited = fleet.audit(user)
        assert audited == [(case.action, case.subject, "done")], audited
        return True
    with pytest.raises(PermissionDenied, match=f"{user} \\({role.value}\\) may not"):
        case.call(api)
    audited = fleet.audit(user)
    assert audited == [(case.action, case.subject, "denied")], audited
    return False
