"""The user directory, the audit trail and analytics over real HTTP (the WSGI
adapter over a SQLite file, and PostgreSQL when SMARTIOT_TEST_PG_URL is set):
admins only for /users, engineers and admins for /audit, every change and
refusal in the trail, everything limited to the caller's organization."""

from __future__ import annotations

from core.model import Device, DeviceStatus
from core.model.roles import Role
from tests.integration.api.conftest import Api


def _actions(api: Api, user: str) -> list[tuple[str, str, str]]:
    return [(e.action, e.subject, e.details.get("outcome", "ok"))
            for e in api.store.audit.entries(after_seq=0) if e.actor == user]


def test_admins_keep_the_user_directory(api: Api) -> None:
    c = api.client
    added = c.call("POST", "/users", {"name": "bob", "role": "technician",
                                      "organization": "acme"}, user="ada")
    assert added.status == 201 and added.data["role"] == "technician"
    assert added.headers["ETag"] == '"1"'
    assert c.call("POST", "/users", {"name": "bob", "role": "support"},
                  user="ada").status == 409
    bad = c.call("POST", "/users", {"name": "dave", "role": "boss"}, user="ada")
    assert bad.status == 400 and bad.error["message"].startswith("role")
    stale = c.call("PUT", "/users/bob", {"role": "engineer"}, user="ada",
                   headers={"If-Match": '"7"'})
    assert stale.status == 409
    changed = c.call("PUT", "/users/bob", {"role": "engineer", "disabled": True}, user="ada",
                     headers={"If-Match": '"1"'})
    assert changed.status == 200, changed.body
    assert (changed.data["role"], changed.data["disabled"], changed.data["version"]) == (
        "engineer", True, 3)
    assert [u["name"] for u in c.call("GET", "/users", user="ada").data["items"]] == ["bob"]
    # an organization's admin sees another organization's people as unknown
    assert c.call("GET", "/users", org="beta", user="bea").data["items"] == []
    assert c.call("PUT", "/users/bob", {"disabled": False}, org="beta",
                  user="bea").status == 404
    assert _actions(api, "ada") == [("user.add", "bob", "ok"), ("user.role", "bob", "ok"),
                                    ("user.disable", "bob", "ok")]


def test_only_admins_may_change_the_directory_and_refusals_are_audited(api: Api) -> None:
    c = api.client
    for role in (Role.TECHNICIAN, Role.SUPPORT, Role.ENGINEER):
        user = f"{role.value}-9"
        refused = c.call("POST", "/users", {"name": "mallory", "role": "admin"}, role=role,
                         user=user)
        assert refused.status == 403 and "may not" in refused.error["message"]
        assert c.call("GET", "/users", role=role, user=user).status == 403
        assert _actions(api, user) == [("user.add", "mallory", "denied"),
                                       ("user.list", "users", "denied")]
    assert api.store.users.get("mallory") is None


def test_audit_is_read_by_engineers_and_admins_paged(api: Api) -> None:
    c = api.client
    for name in ("a", "b", "c"):
        c.call("POST", "/users", {"name": name, "role": "support"}, user="ada")
    assert c.call("GET", "/audit", role=Role.SUPPORT, user="sue").status == 403
    first = c.call("GET", "/audit?action=user.add&limit=2", role=Role.ENGINEER, user="erin")
    assert [e["subject"] for e in first.data["items"]] == ["c", "b"] and first.data["next"]
    rest = c.call("GET", f"/audit?action=user.add&limit=2&next={first.data['next']}",
                  role=Role.ENGINEER, user="erin")
    assert [e["subject"] for e in rest.data["items"]] == ["a"] and rest.data["next"] == ""
    denied = c.call("GET", "/audit?denied=true", role=Role.ADMIN, user="ada")
    assert [(e["actor"], e["action"]) for e in denied.data["items"]] == [("sue", "audit.list")]
    assert c.call("GET", "/audit?since=yesterday", user="ada").status == 400
    report = c.call("GET", "/audit/verify", role=Role.ENGINEER, user="erin")
    assert report.status == 200 and report.data["entries"] >= 4
    assert _actions(api, "erin")[-1] == ("audit.verify", "audit", "ok")


def test_dashboard_counts_the_callers_organization(api: Api) -> None:
    api.store.registry.upsert_many([
        Device("acme-1", device_type="pump", organization="acme", status=DeviceStatus.ONLINE),
        Device("beta-1", device_type="valve", organization="beta")])
    acme = api.client.call("GET", "/analytics/dashboard", role=Role.SUPPORT, org="acme").data
    assert (acme["total"], acme["online"], acme["by_type"]) == (1, 1, {"pump": 1})
    everyone = api.client.call("GET", "/analytics/dashboard", role=Role.SUPPORT).data
    assert everyone["total"] == 2


def test_a_directory_entry_decides_the_callers_role_and_disabled_is_refused(api: Api) -> None:
    c = api.client
    assert c.call("POST", "/users", {"name": "tess", "role": "support",
                                     "organization": "acme"}, user="ada").status == 201
    # the token says admin; the directory says support in acme
    me = c.call("GET", "/users/me", role=Role.ADMIN, user="tess").data
    assert (me["role"], me["organization"]) == ("support", "acme")
    refused = c.call("POST", "/users", {"name": "x", "role": "admin"}, role=Role.ADMIN,
                     user="tess")
    assert refused.status == 403
    assert c.call("PUT", "/users/tess", {"disabled": True}, user="ada").status == 200
    gone = c.call("GET", "/users/me", role=Role.ADMIN, user="tess")
    assert gone.status == 403 and "disabled" in gone.error["message"]


def test_what_the_analytics_page_draws_is_served_scoped(api: Api) -> None:
    from datetime import timedelta

    from core.model import Alert, AlertRule, Reading, Severity
    from core.model.timeutil import utcnow

    now = utcnow()
    api.store.registry.upsert_many([
        Device("acme-1", device_type="pump", organization="acme", status=DeviceStatus.ONLINE),
        Device("beta-1", device_type="pump", organization="beta", status=DeviceStatus.ONLINE)])
    api.store.telemetry.write_batch([Reading(d, "temperature", now - timedelta(minutes=m),
                                             20.0 + m) for d in ("acme-1", "beta-1")
                                     for m in range(1, 11)])
    api.store.alerts.add(Alert("acme-1", "hot", Severity.CRITICAL, "hot", 30.0))
    api.store.rules.add(AlertRule("Hot", "threshold", {"metric": "temperature", "op": "above",
                                                       "limit": 28}, Severity.WARNING))
    c = api.client
    acme = {"role": Role.SUPPORT, "org": "acme"}
    overview = c.call("GET", "/analytics/overview?top_metric=temperature", **acme).data
    assert overview["stats"]["total"] == 1 and [d for d, _ in overview["top"]] == ["acme-1"]
    assert sum(map(sum, overview["alerts_per_hour"].values())) == 1
    assert overview["locations"] is None
    body = {"device_ids": ["acme-1"], "metrics": ["temperature"],
            "start": (now - timedelta(hours=1)).isoformat(),
            "end": (now + timedelta(minutes=1)).isoformat(),  # the alert was raised after now
            "bucket_s": 300}
    history = c.call("POST", "/analytics/history", body, **acme).data
    assert sum(history["series"][0]["count"]) == 10 and history["bucket_s"] == 300
    assert [t["limit"] for t in history["thresholds"]] == [28.0]
    assert [m["device_id"] for m in history["marks"]] == ["acme-1"]
    other = c.call("POST", "/analytics/history", {**body, "device_ids": ["beta-1"]}, **acme)
    assert other.status == 404
    assert c.call("GET", "/analytics/metrics?device_ids=acme-1", **acme).data == {
        "items": ["temperature"]}
    assert c.call("GET", "/analytics/metrics?device_ids=beta-1", **acme).status == 404
    assert c.call("GET", "/analytics/metrics", **acme).status == 400
    lines = c.call("GET", "/analytics/thresholds?metrics=temperature", **acme).data["items"]
    assert [t["name"] for t in lines] == ["Hot"]
