"""The device routes over real HTTP and a real store: a device's ETag is its
stored version, a stale If-Match on PUT, DELETE or decommission is 409 and
changes nothing; a caller of another organization gets 404 for everything
about a device; and the service's audit entries follow every route."""

from __future__ import annotations

import pytest

from core.model import Device, DeviceStatus
from core.model.roles import Role
from tests.integration.api.conftest import Api

pytestmark = pytest.mark.postgres


def test_stale_if_match_is_409_and_changes_nothing(api: Api) -> None:
    c = api.client
    created = c.call("POST", "/devices", {"device_id": "pump-1", "device_type": "pump"})
    assert created.status == 201 and created.headers["ETag"] == '"1"'
    assert created.data["version"] == 1
    first = c.call("PUT", "/devices/pump-1", {"name": "North pump"}, role=Role.TECHNICIAN,
                   headers={"If-Match": '"1"'})
    assert first.status == 200 and first.headers["ETag"] == '"2"'
    # the hub hearing from the device does not make the person's read stale
    api.store.registry.record_activity([Device("pump-1", device_type="pump",
                                               status=DeviceStatus.ONLINE)])
    assert c.call("GET", "/devices/pump-1").headers["ETag"] == '"2"'
    for method, path, body in (("PUT", "/devices/pump-1", {"name": "Lost edit"}),
                               ("POST", "/devices/pump-1/decommission", None),
                               ("DELETE", "/devices/pump-1", None)):
        stale = c.call(method, path, body, headers={"If-Match": 'W/"1"'})
        assert stale.status == 409, (method, stale.body)
        assert stale.error["code"] == "CONFLICT"
        assert "changed since version 1 (it is now version 2)" in stale.error["message"]
    kept = api.store.registry.get("pump-1")
    assert (kept.name, kept.status, kept.version) == ("North pump", DeviceStatus.ONLINE, 2)
    bad = c.call("PUT", "/devices/pump-1", {"name": "x"}, headers={"If-Match": '"abc"'})
    assert bad.status == 400 and bad.error["message"].startswith("If-Match:")
    retired = c.call("POST", "/devices/pump-1/decommission", headers={"If-Match": '"2"'})
    assert retired.status == 200 and retired.data["status"] == "decommissioned"
    assert c.call("DELETE", "/devices/pump-1", headers={"If-Match": '"3"'}).status == 200
    actions = [(e.action, e.details.get("outcome", "done")) for e in api.store.audit.search(None)
               if e.subject == "pump-1"]
    assert actions == [("device.register", "done"), ("device.update", "done"),
                       ("device.decommission", "done"), ("device.delete", "done")]


def test_another_organization_gets_404_for_everything_about_a_device(api: Api) -> None:
    c = api.client
    assert c.call("POST", "/devices", {"device_id": "pump-1", "device_type": "pump"},
                  org="acme").status == 201
    assert api.store.registry.get("pump-1").organization == "acme"
    calls = [("GET", "/devices/pump-1", None), ("GET", "/devices/pump-1/history", None),
             ("PUT", "/devices/pump-1", {"name": "mine"}),
             ("POST", "/devices/pump-1/decommission", None), ("DELETE", "/devices/pump-1", None),
             ("POST", "/devices/pump-1/commands", {"command": "reboot"}),
             ("PUT", "/devices/pump-1/shadow", {"desired": {"interval_s": 1}})]
    for method, path, body in calls:
        reply = c.call(method, path, body, org="globex")
        assert reply.status == 404, (method, path, reply.body)
        assert "pump-1 is not registered" in reply.error["message"]
    assert c.call("GET", "/devices", org="globex").data["items"] == []
    assert [d["device_id"] for d in c.call("GET", "/devices", org="acme").data["items"]] \
        == ["pump-1"]
    kept = api.store.registry.get("pump-1")
    assert (kept.name, kept.status, kept.version) == ("", DeviceStatus.OFFLINE, 1)
