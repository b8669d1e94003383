"""The devices use cases over a real store (SQLite, and PostgreSQL when
SMARTIOT_TEST_PG_URL is set), through the same session every front end uses:
each change is refused to the roles core.model.roles.GRANTS leaves out and
audited whether it went through or was refused; a person of another
organization gets NotFound for everything about a device; an edit made from
an older version is refused with ConcurrentModification and changes nothing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import pytest

from core.errors import ConcurrentModification, NotFound
from core.model import Device, DeviceStatus
from core.model.roles import Permission, Role
from core.ports.backend import Backend
from core.ports.commands import CommandChannel, CommandOutcome, CommandResult
from core.ports.fleet_api import DevicesApi
from core.ports.registry import DeviceQuery
from core.ports.shadows import ShadowDocument, ShadowService
from core.store import Store
from core.store.shadows import SqlShadowStore
from tests.integration.services.area_fleet import AreaFleet, UseCase, run_as
from tests.integration.store.conftest import (  # noqa: F401  (fixtures)
    open_store,
    store,
    store_url,
)


class Channel(CommandChannel):
    """Answers at once, as a device on a healthy link would; records what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def send(self, device_id: str, command: str, params: dict[str, Any] | None = None, *,
             timeout_s: float = 10.0) -> Future[CommandResult]:
        with self._lock:
            self.sent.append((device_id, command))
        future: Future[CommandResult] = Future()
        future.set_result(CommandResult(uuid.uuid4().hex, device_id, command,
                                        CommandOutcome.OK, {"echo": command}, 3.0))
        return future


class StoredShadows(ShadowService):
    """Desired-state edits kept in the store's shadow table, versioned as the
    hub keeps them (the hub adds the MQTT side, which these use cases never see)."""

    def __init__(self, shadows: SqlShadowStore) -> None:
        self._shadows = shadows

    def get(self, device_id: str) -> ShadowDocument:
        return self._shadows.get(device_id) or ShadowDocument(device_id)

    def update_desired(self, device_id: str, desired: dict[str, Any], *,
                       expected_version: int | None = None) -> ShadowDocument:
        current = self.get(device_id)
        new = replace(current, desired={**current.desired, **desired},
                      version=current.version + 1)
        expected = current.version if expected_version is None else expected_version
        self._shadows.save(new, expected_version=expected or None)
        return new


@dataclass
class Fleet(AreaFleet):
    channel: Channel

    def session(self, role: Role, organization: str = "acme", user: str = "") -> DevicesApi:
        return self.api(role, organization, user).devices


@pytest.fixture
def fleet(store: Store) -> Fleet:  # noqa: F811
    channel = Channel()
    backend = Backend("local", registry=store.registry, alerts=store.alerts,
                      telemetry=store.telemetry, commands=channel,
                      shadows=StoredShadows(store.shadows), audit=store.audit,
                      link_stats=store.link_stats, command_log=store.commands)
    store.registry.upsert_many([
        Device("pump-1", device_type="pump", organization="acme"),
        Device("pump-2", device_type="pump", organization="acme"),
        Device("meter-9", device_type="meter", organization="globex"),
    ])
    return Fleet(store, backend, channel)


USE_CASES: list[UseCase[DevicesApi]] = [
    UseCase("device.register", Permission.DEVICE_REGISTER, "valve-7",
            lambda api: api.register(Device("valve-7", device_type="valve"))),
    UseCase("device.update", Permission.DEVICE_UPDATE, "pump-1",
            lambda api: api.update(replace(api.get("pump-1"), name="Main pump"))),
    UseCase("device.decommission", Permission.DEVICE_DECOMMISSION, "pump-1",
            lambda api: api.decommission("pump-1")),
    UseCase("device.delete", Permission.DEVICE_DELETE, "pump-2",
            lambda api: api.delete("pump-2")),
    UseCase("device.command", Permission.DEVICE_COMMAND, "pump-1",
            lambda api: api.command("pump-1", "ping")),
    UseCase("device.desired", Permission.DESIRED_STATE, "pump-1",
            lambda api: api.update_desired("pump-1", {"interval_s": 5})),
]


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("case", USE_CASES, ids=lambda c: c.action)
def test_each_change_is_refused_to_roles_without_the_grant_and_audited_either_way(
        fleet: Fleet, case: UseCase[DevicesApi], role: Role) -> None:
    if not run_as(fleet, role, case, fleet.session(role)):
        # nothing happened: the record, the device and its shadow are as they were
        assert fleet.channel.sent == []
        assert fleet.store.registry.get("pump-1").status is DeviceStatus.OFFLINE
        assert fleet.store.registry.find("pump-2") is not None
        assert fleet.store.registry.find("valve-7") is None


def test_a_person_of_another_organization_cannot_see_or_change_a_device(fleet: Fleet) -> None:
    outsider = fleet.session(Role.ADMIN, organization="globex", user="gus")
    assert [d.device_id for d in outsider.all()] == ["meter-9"]
    assert [d.device_id for d in outsider.list().items] == ["meter-9"]
    assert [d.device_id for d in outsider.overview().devices] == ["meter-9"]
    reads: list[Callable[[], object]] = [
        lambda: outsider.get("pump-1"), lambda: outsider.details("pump-1"),
        lambda: outsider.history("pump-1"), lambda: outsider.shadow("pump-1"),
        lambda: outsider.link("pump-1")]
    changes: list[Callable[[], object]] = [
        lambda: outsider.update(Device("pump-1", name="mine now", device_type="pump")),
        lambda: outsider.decommission("pump-1"), lambda: outsider.delete("pump-1"),
        lambda: outsider.command("pump-1", "reboot"),
        lambda: outsider.update_desired("pump-1", {"interval_s": 1})]
    for attempt in reads + changes:
        with pytest.raises(NotFound, match="pump-1 is not registered"):
            attempt()
    assert outsider.open_alerts(["pump-1", "meter-9"]).counts == {"meter-9": 0}
    kept = fleet.store.registry.get("pump-1")
    assert (kept.name, kept.status, kept.organization) == ("", DeviceStatus.OFFLINE, "acme")
    assert fleet.channel.sent == []
    assert fleet.backend.shadows is not None
    assert fleet.backend.shadows.get("pump-1").desired == {}
    # a person of an organization registers into it, whatever the device says
    made = outsider.register(Device("meter-10", device_type="meter", organization="acme"))
    assert made.organization == "globex"
    with pytest.raises(NotFound):
        fleet.session(Role.ADMIN).get("meter-10")


def test_an_edit_from_an_older_version_is_refused_and_changes_nothing(fleet: Fleet) -> None:
    ada, bob = fleet.session(Role.ADMIN, user="ada"), fleet.session(Role.ADMIN, user="bob")
    seen_by_ada, seen_by_bob = ada.get("pump-1"), bob.get("pump-1")
    assert seen_by_ada.version == seen_by_bob.version == 1
    saved = ada.update(replace(seen_by_ada, name="Ada's name", tags=frozenset({"roof"})))
    assert saved.version == 2 and saved.name == "Ada's name"
    with pytest.raises(ConcurrentModification, match="changed since version 1"):
        bob.update(replace(seen_by_bob, name="Bob's name"))
    with pytest.raises(ConcurrentModification):
        bob.delete("pump-1", expected_version=1)
    with pytest.raises(ConcurrentModification):
        bob.decommission("pump-1", expected_version=1)
    kept = fleet.store.registry.get("pump-1")
    assert (kept.name, kept.tags, kept.status, kept.version) == (
        "Ada's name", frozenset({"roof"}), DeviceStatus.OFFLINE, 2)
    # the hub's traffic does not make a person's read stale
    fleet.store.registry.record_activity([replace(kept, status=DeviceStatus.ONLINE)])
    assert bob.update(replace(bob.get("pump-1"), name="Bob's name"),
                      expected_version=2).version == 3
    assert fleet.store.registry.get("pump-1").status is DeviceStatus.ONLINE
    assert [d.device_id for d in ada.all(DeviceQuery(text="pump"))] == ["pump-1", "pump-2"]
