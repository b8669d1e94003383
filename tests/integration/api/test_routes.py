"""Every route through real HTTP: envelope, status codes, 400 naming the field,
403 for a role that may not, 404, 409 on a stale If-Match, paging."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import pytest

from core.model import Alert, Reading, Severity
from core.model.roles import Role
from core.model.timeutil import utcnow
from tests.integration.api.conftest import Api
from tests.integration.api.test_firmware_routes import trust_server_key

pytestmark = pytest.mark.postgres

CORS = "Access-Control-Allow-Origin"


def _device(api: Api, device_id: str, device_type: str = "pump", **extra: object) -> None:
    reply = api.client.call("POST", "/devices", {"device_id": device_id,
                                                 "device_type": device_type, **extra})
    assert reply.status == 201, reply.body


def _alert(api: Api, device_id: str = "pump-1") -> str:
    alert = Alert(device_id, "rule-high", Severity.WARNING, "pressure high", 9.5)
    api.store.alerts.add(alert)
    return alert.alert_id


def test_devices_register_read_edit_delete(api: Api) -> None:
    c = api.client
    created = c.call("POST", "/devices", {"device_id": "pump-1", "device_type": "pump",
                                          "name": "Pump 1", "tags": ["hall-a"],
                                          "location": {"latitude": 52.5, "longitude": 13.4}})
    assert created.status == 201 and created.body["success"] is True
    assert created.data["tags"] == ["hall-a"] and created.headers[CORS] == "*"
    got = c.call("GET", "/devices/pump-1", role=Role.SUPPORT)
    assert got.status == 200 and got.data["name"] == "Pump 1"
    etag = got.headers["ETag"]
    edited = c.call("PUT", "/devices/pump-1", {"name": "Pump one"}, role=Role.TECHNICIAN,
                    headers={"If-Match": etag})
    assert edited.status == 200 and edited.data["name"] == "Pump one"
    assert api.store.registry.get("pump-1").name == "Pump one"
    stale = c.call("PUT", "/devices/pump-1", {"name": "Lost edit"}, headers={"If-Match": etag})
    assert stale.status == 409 and stale.error["code"] == "CONFLICT"
    assert api.store.registry.get("pump-1").name == "Pump one"
    refused = c.call("DELETE", "/devices/pump-1", role=Role.ENGINEER, user="erin")
    assert refused.status == 403 and "may not delete devices" in refused.error["message"]
    last = api.store.audit.search(None)[-1]
    assert (last.actor, last.action, last.subject, last.details["outcome"]) == (
        "erin", "device.delete", "pump-1", "denied")
    assert c.call("DELETE", "/devices/pump-1").status == 200
    assert c.call("GET", "/devices/pump-1").status == 404
    assert c.call("PUT", "/devices/pump-1", {"name": "x"}).status == 404


def test_bad_input_is_400_naming_the_field(api: Api) -> None:
    c = api.client
    reply = c.call("POST", "/devices", {"device_id": "pump-1"})
    assert reply.status == 400 and reply.error["code"] == "VALIDATION_ERROR"
    assert reply.error["details"][0]["field"] == "device_type"
    reply = c.call("POST", "/devices", {"device_id": "bad id!", "device_type": "pump"})
    assert reply.status == 400 and "bad id!" in reply.error["message"]
    reply = c.call("POST", "/devices", {"device_id": "p", "device_type": "pump",
                                        "location": {"latitude": 91, "longitude": 0}})
    assert reply.status == 400 and reply.error["details"][0]["field"] == "location.latitude"
    reply = c.call("POST", "/devices", {"device_id": "p", "device_type": "pump", "tgas": []})
    assert reply.status == 400 and reply.error["details"][0]["field"] == "tgas"
    reply = c.call("POST", "/devices", raw=b"{not json")
    assert reply.status == 400 and reply.error["details"][0]["field"] == "body"
    reply = c.call("GET", "/devices?limit=0")
    assert reply.status == 400 and reply.error["details"][0]["field"] == "limit"
    reply = c.call("GET", "/devices?next=garbage")
    assert reply.status == 400 and reply.error["message"].startswith("next:")
    assert "Traceback" not in str(reply.body)


def test_no_token_or_forged_token_is_401_and_role_comes_only_from_the_token(api: Api) -> None:
    c = api.client
    assert c.call("GET", "/devices", role=None).status == 401
    forged = c.call("GET", "/devices", role=None, headers={"Authorization": "Bearer abc.def"})
    assert forged.status == 401 and forged.error["code"] == "UNAUTHORIZED"
    # A role claimed in a header or the body changes nothing.
    reply = c.call("POST", "/devices", {"device_id": "p", "device_type": "pump",
                                        "role": "admin"}, role=Role.SUPPORT,
                   headers={"X-Role": "admin"})
    assert reply.status == 400  # 'role' is not a field of a device
    reply = c.call("POST", "/devices", {"device_id": "p", "device_type": "pump"},
                   role=Role.SUPPORT, headers={"X-Role": "admin", "cognito-groups": "admin"})
    assert reply.status == 403
    assert api.store.registry.find("p") is None


def test_paging_with_next_token(api: Api) -> None:
    for i in range(7):
        _device(api, f"pump-{i}")
    seen: list[str] = []
    path = "/devices?limit=3"
    pages = 0
    while True:
        reply = api.client.call("GET", path)
        assert reply.status == 200
        seen += [d["device_id"] for d in reply.data["items"]]
        pages += 1
        if not reply.data["next"]:
            break
        path = f"/devices?limit=3&next={reply.data['next']}"
    assert pages == 3 and sorted(seen) == [f"pump-{i}" for i in range(7)]
    for _ in range(5):
        _alert(api, "pump-1")
    first = api.client.call("GET", "/alerts?limit=4")
    assert len(first.data["items"]) == 4 and first.data["next"]
    second = api.client.call("GET", f"/alerts?limit=4&next={first.data['next']}")
    assert len(second.data["items"]) == 1 and second.data["next"] == ""


def test_organization_scope(api: Api) -> None:
    _device(api, "pump-a", organization="acme")
    _device(api, "pump-b", organization="other")
    c = api.client
    mine = c.call("GET", "/devices", role=Role.SUPPORT, org="acme")
    assert [d["device_id"] for d in mine.data["items"]] == ["pump-a"]
    assert c.call("GET", "/devices/pump-b", role=Role.SUPPORT, org="acme").status == 404
    created = c.call("POST", "/devices", {"device_id": "pump-c", "device_type": "pump",
                                          "organization": "other"}, role=Role.TECHNICIAN,
                     org="acme")
    assert created.data["organization"] == "acme"


def test_alerts_acknowledge_resolve_snooze(api: Api) -> None:
    _device(api, "pump-1")
    c = api.client
    alert_id = _alert(api)
    listed = c.call("GET", "/alerts?state=active", role=Role.SUPPORT)
    assert [a["alert_id"] for a in listed.data["items"]] == [alert_id]
    got = c.call("GET", f"/alerts/{alert_id}", role=Role.SUPPORT)
    assert got.data["state"] == "active" and got.headers["ETag"] == '"1"'
    stale = c.call("POST", f"/alerts/{alert_id}/acknowledge", {}, role=Role.SUPPORT,
                   headers={"If-Match": '"0"'})
    assert stale.status == 409
    acked = c.call("POST", f"/alerts/{alert_id}/acknowledge", {"comment": "on it"},
                   role=Role.SUPPORT, user="sam", headers={"If-Match": '"1"'})
    assert acked.status == 200 and acked.data["acknowledged_by"] == "sam"
    again = c.call("POST", f"/alerts/{alert_id}/acknowledge", {}, role=Role.SUPPORT)
    assert again.status == 409
    snoozed = c.call("POST", f"/alerts/{alert_id}/snooze", {"minutes": 30}, role=Role.SUPPORT)
    assert snoozed.status == 200 and snoozed.data["snoozed_until"]
    assert c.call("POST", f"/alerts/{alert_id}/snooze", {}, role=Role.SUPPORT).status == 400
    resolved = c.call("POST", f"/alerts/{alert_id}/resolve", {"comment": "fixed"},
                      role=Role.SUPPORT)
    assert resolved.data["state"] == "resolved"
    assert api.store.alerts.get(alert_id).resolve_comment == "fixed"
    assert c.call("GET", "/alerts/nope", role=Role.SUPPORT).status == 404
    assert c.call("GET", "/alerts?state=bogus").status == 400


def test_alert_rules(api: Api) -> None:
    c = api.client
    body = {"name": "High pressure", "rule_type": "threshold",
            "params": {"metric": "pressure", "op": "above", "limit": 9}}
    assert c.call("POST", "/alerts/rules", body, role=Role.SUPPORT).status == 403
    created = c.call("POST", "/alerts/rules", body, role=Role.ENGINEER)
    assert created.status == 201, created.body
    rule_id = created.data["rule_id"]
    bad = c.call("POST", "/alerts/rules", {**body, "params": {"metric": "pressure"}},
                 role=Role.ENGINEER)
    assert bad.status == 400 and "'limit'" in bad.error["message"]
    # A role that may not edit rules hears so, whatever the parameters.
    assert c.call("POST", "/alerts/rules", {**body, "params": {}},
                  role=Role.SUPPORT).status == 403
    edited = c.call("PUT", f"/alerts/rules/{rule_id}", {**body, "enabled": False},
                    role=Role.ENGINEER, headers={"If-Match": '"1"'})
    assert edited.status == 200 and edited.data["version"] == 2
    stale = c.call("PUT", f"/alerts/rules/{rule_id}", body, role=Role.ENGINEER,
                   headers={"If-Match": '"1"'})
    assert stale.status == 409
    assert [r["rule_id"] for r in c.call("GET", "/alerts/rules").data["items"]] == [rule_id]
    assert c.call("DELETE", f"/alerts/rules/{rule_id}", role=Role.ENGINEER).status == 200
    assert c.call("DELETE", f"/alerts/rules/{rule_id}", role=Role.ENGINEER).status == 404


def test_users_me_and_preferences(api: Api) -> None:
    c = api.client
    me = c.call("GET", "/users/me", role=Role.TECHNICIAN, user="tina", org="acme")
    assert me.data["user"] == "tina" and me.data["role"] == "technician"
    assert me.data["organization"] == "acme" and "device.command" in me.data["permissions"]
    saved = c.call("PUT", "/users/me/preferences", {"preferences": {"theme": "dark"}},
                   role=Role.TECHNICIAN, user="tina")
    assert saved.status == 200 and saved.data["version"] == 1
    last = api.store.audit.search(None)[-1]
    assert (last.actor, last.action, last.details["keys"]) == ("tina", "user.preferences",
                                                               ["theme"])
    stale = c.call("PUT", "/users/me/preferences", {"preferences": {"theme": "light"}},
                   role=Role.TECHNICIAN, user="tina", headers={"If-Match": '"0"'})
    assert stale.status == 409
    again = c.call("GET", "/users/me", role=Role.TECHNICIAN, user="tina")
    assert again.data["preferences"] == {"theme": "dark"}
    other = c.call("GET", "/users/me", role=Role.TECHNICIAN, user="tom")
    assert other.data["preferences"] == {}
    assert c.call("PUT", "/users/me/preferences", {"theme": "x"}).status == 400


def test_history_dashboard_and_query(api: Api) -> None:
    _device(api, "pump-1")
    now = utcnow()
    api.store.telemetry.write_batch([
        Reading("pump-1", "pressure", now - timedelta(minutes=10 - i), 5.0 + i)
        for i in range(5)])
    c = api.client
    history = c.call("GET", "/devices/pump-1/history?metric=pressure", role=Role.SUPPORT)
    assert history.status == 200
    assert history.data["series"][0]["value"] == [5.0, 6.0, 7.0, 8.0, 9.0]
    assert c.call("GET", "/devices/pump-1/history?start=yesterday").status == 400
    assert c.call("GET", "/devices/ghost/history").status == 404
    dash = c.call("GET", "/analytics/dashboard", role=Role.SUPPORT)
    assert dash.data["total"] == 1 and dash.data["by_type"] == {"pump": 1}
    start = (now - timedelta(hours=1)).isoformat()
    query = c.call("POST", "/analytics/query", {"device_ids": ["pump-1"], "metric": "pressure",
                                               "start": start, "end": now.isoformat(),
                                               "bucket_s": 3600})
    assert query.status == 200, query.body
    assert sum(query.data["series"][0]["count"]) == 5
    bad = c.call("POST", "/analytics/query", {"device_ids": [], "metric": "pressure",
                                             "start": start, "end": now.isoformat()})
    assert bad.status == 400 and bad.error["details"][0]["field"] == "device_ids"


def test_commands_and_shadow_need_a_live_backend(api: Api) -> None:
    _device(api, "pump-1")
    c = api.client
    refused = c.call("POST", "/devices/pump-1/commands", {"command": "reboot"},
                     role=Role.SUPPORT)
    assert refused.status == 403
    offline = c.call("POST", "/devices/pump-1/commands", {"command": "reboot"},
                     role=Role.TECHNICIAN)
    assert offline.status == 404 and "cannot send commands" in offline.error["message"]
    assert c.call("POST", "/devices/pump-1/commands", {"command": "explode"}).status == 400
    assert c.call("GET", "/devices/pump-1/shadow").status == 404
    assert c.call("PUT", "/devices/pump-1/shadow", {"desired": {"interval": 5}},
                  role=Role.SUPPORT).status == 403


def test_firmware_upload_and_deployment_control(api: Api, tmp_path: Path) -> None:
    _device(api, "pump-1")
    _device(api, "pump-2")
    c = api.client
    trust_server_key(api, tmp_path / "codesign")  # a team signs only with keys it trusts
    image = base64.b64encode(b"\x7fELF pump firmware 2.0.0" * 100).decode()
    body = {"device_type": "pump", "version": "2.0.0", "image_base64": image}
    assert c.call("POST", "/firmware/upload", body, role=Role.TECHNICIAN).status == 403
    uploaded = c.call("POST", "/firmware/upload", body, role=Role.ENGINEER)
    assert uploaded.status == 201, uploaded.body
    firmware_id = uploaded.data["firmware_id"]
    assert c.call("POST", "/firmware/upload", {**body, "image_base64": "!!"},
                  role=Role.ENGINEER).status == 400
    assert c.call("POST", "/firmware/upload", body, role=Role.ENGINEER).status == 400  # twice
    create = {"firmware_id": firmware_id,
              "target": {"kind": "list", "device_ids": ["pump-1", "pump-2"]}}
    assert c.call("POST", "/firmware/deployments", create, role=Role.SUPPORT).status == 403
    made = c.call("POST", "/firmware/deployments", create, role=Role.ENGINEER)
    assert made.status == 201, made.body
    deployment_id = made.data["deployment_id"]
    status = c.call("GET", f"/firmware/deployments/{deployment_id}", role=Role.SUPPORT)
    assert status.data["targets"] == ["pump-1", "pump-2"] and "executions" in status.data
    paused = c.call("POST", f"/firmware/deployments/{deployment_id}/pause", role=Role.ENGINEER)
    assert paused.status == 200 and paused.data["status"] == "PAUSED", paused.body
    resumed = c.call("POST", f"/firmware/deployments/{deployment_id}/resume", role=Role.ENGINEER)
    assert resumed.status == 200
    retry = c.call("POST", f"/firmware/deployments/{deployment_id}/retry", role=Role.ENGINEER)
    assert retry.status == 404 and "no failed devices" in retry.error["message"]
    assert c.call("POST", f"/firmware/deployments/{deployment_id}/cancel", {},
                  role=Role.TECHNICIAN).status == 403
    canceled = c.call("POST", f"/firmware/deployments/{deployment_id}/cancel", {"force": True},
                      role=Role.ENGINEER)
    assert canceled.status == 200 and canceled.data["status"] == "CANCELED"
    assert c.call("GET", "/firmware/deployments/nope").status == 404
    bad = c.call("POST", "/firmware/deployments", {"firmware_id": firmware_id, "target": {}},
                 role=Role.ENGINEER)
    assert bad.status == 400


def test_oversized_body_is_413(api: Api) -> None:
    big = {"device_id": "p", "device_type": "pump", "metadata": {"x": "y" * (1024 * 1024)}}
    reply = api.client.call("POST", "/devices", big)
    assert reply.status == 413 and reply.error["code"] == "PAYLOAD_TOO_LARGE"
