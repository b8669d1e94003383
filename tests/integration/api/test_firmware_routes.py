"""The firmware library and deployments over the REST API: the routes people
script releases with (list, get, verify, delete, dry-run plan, list and
control deployments), and the rule that the API signs only with a key the
team trusts. Real HTTP, real SQLite (and PostgreSQL when configured)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from core.crypto import codesign
from core.crypto.keystore import CodeSigningKeys
from core.model import Device, ExecutionStatus, Firmware, SemVer
from core.model.roles import Role
from core.model.timeutil import utcnow
from core.ports.signing_keys import TrustedKey
from core.protocol.ota import OtaJobDocument
from tests.integration.api.conftest import Api

IMAGE = b"\x7fELF pump firmware" * 200


def trust_server_key(api: Api, directory: Path) -> str:
    """Create the API server's code-signing key and add it to the team's trusted
    keys, as an admin's `smartiot firmware keys add` would; returns its id."""
    keys = CodeSigningKeys(directory)
    key_id = codesign.key_id(keys.signing_key())
    api.store.trusted_keys.add(TrustedKey(key_id, "api-server", keys.public_pem(),
                                          added_by="ada", added_at=utcnow()))
    return key_id


def _upload(api: Api, version: str, role: Role = Role.ENGINEER, **extra: object):
    body = {"device_type": "pump", "version": version,
            "image_base64": base64.b64encode(IMAGE + version.encode()).decode(), **extra}
    return api.client.call("POST", "/firmware/upload", body, role=role, user="erin")


def _devices(api: Api) -> None:
    api.store.registry.upsert_many(
        [Device(f"pump-{i}", device_type="pump", organization="acme", firmware_version="1.0.0")
         for i in range(3)]
        + [Device("pump-x", device_type="pump", organization="globex"),
           Device("env-1", device_type="environmental", organization="acme")])


def _vendor_image(api: Api, version: str) -> Firmware:
    """An image a vendor signed, stored without the API (its key is not the server's)."""
    vendor = codesign.generate_key()
    image = IMAGE + b"vendor" + version.encode()
    fw = Firmware(SemVer.parse(version), "pump", len(image), hashlib.sha256(image).hexdigest(),
                  codesign.sign(vendor, image), codesign.key_id(vendor))
    api.store.firmware.add(fw, image)
    return fw


def test_the_api_signs_only_with_a_key_the_team_trusts(api: Api, tmp_path: Path) -> None:
    _devices(api)
    c = api.client
    # No key on the server: refused, naming the fix; no key is created as a side effect.
    keyless = _upload(api, "1.1.0")
    assert keyless.status == 400, keyless.body
    assert "no code-signing key" in keyless.error["message"]
    assert not (tmp_path / "codesign" / "signing-key.pem").exists()

    # A key the team does not trust: the upload and a deployment's manifest are refused.
    keys = CodeSigningKeys(tmp_path / "codesign")
    key_id = codesign.key_id(keys.signing_key())
    untrusted = _upload(api, "1.1.0")
    assert untrusted.status == 400
    assert f"{key_id} is not in the team's trusted keys" in untrusted.error["message"]
    fw = _vendor_image(api, "1.2.0")
    spec = {"firmware_id": fw.firmware_id, "target": {"kind": "list", "device_ids": ["pump-0"]}}
    refused = c.call("POST", "/firmware/deployments", spec, role=Role.ENGINEER)
    assert refused.status == 400, refused.body
    message = refused.error["message"]
    assert f"{key_id} is not in the team's trusted keys" in message
    assert "devices would refuse this deployment" in message and "firmware keys add" in message
    assert api.store.deployments.list() == [] and api.store.firmware.list() == [fw]

    # Once an admin trusts it, both go through and the manifest names that key.
    api.store.trusted_keys.add(TrustedKey(key_id, "api-server", keys.public_pem(),
                                          added_by="ada", added_at=utcnow()))
    assert _upload(api, "1.3.0").status == 201
    made = c.call("POST", "/firmware/deployments", spec, role=Role.ENGINEER)
    assert made.status == 201, made.body
    stored = api.store.deployments.get(made.data["deployment_id"])
    manifest = OtaJobDocument.parse(stored.document).manifest
    assert manifest is not None and manifest.key_id == key_id

    # Revoked: refused again.
    api.store.trusted_keys.revoke(key_id, "ada", utcnow())
    again = c.call("POST", "/firmware/deployments", spec, role=Role.ENGINEER)
    assert again.status == 400 and "not in the team's trusted keys" in again.error["message"]


def test_library_routes_list_get_verify_and_delete(api: Api, tmp_path: Path) -> None:
    _devices(api)
    key_id = trust_server_key(api, tmp_path / "codesign")
    c = api.client
    for version in ("1.1.0", "1.2.0", "1.3.0"):
        assert _upload(api, version).status == 201
    first = c.call("GET", "/firmware?limit=2", role=Role.SUPPORT)
    assert first.status == 200 and len(first.data["items"]) == 2 and first.data["next"]
    rest = c.call("GET", f"/firmware?limit=2&next={first.data['next']}", role=Role.SUPPORT)
    ids = [f["firmware_id"] for f in first.data["items"] + rest.data["items"]]
    assert sorted(ids) == ["pump@1.1.0", "pump@1.2.0", "pump@1.3.0"] and not rest.data["next"]
    assert c.call("GET", "/firmware?device_type=valve").data["items"] == []
    assert c.call("GET", "/firmware?limit=0").status == 400

    one = c.call("GET", "/firmware/pump@1.2.0", role=Role.TECHNICIAN)
    assert one.status == 200
    assert (one.data["key_id"], one.data["signed_by"]) == (key_id, "api-server")
    assert c.call("GET", "/firmware/pump@9.9.9").status == 404

    verified = c.call("POST", "/firmware/pump@1.2.0/verify", role=Role.SUPPORT)
    assert verified.status == 200 and verified.data["ok"] is True
    assert "signature verified" in verified.data["message"]
    assert verified.data["trusted_keys"] == [key_id]
    with api.store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE firmware_images SET data = %s WHERE firmware_id = %s"
                             if api.store.engine.dialect.name == "postgresql" else
                             "UPDATE firmware_images SET data = ? WHERE firmware_id = ?",
                             (b"swapped image", "pump@1.2.0"))
    damaged = c.call("POST", "/firmware/pump@1.2.0/verify").data
    assert damaged["ok"] is False and damaged["sha256_ok"] is False

    assert c.call("DELETE", "/firmware/pump@1.1.0", role=Role.TECHNICIAN).status == 403
    spec = {"firmware_id": "pump@1.3.0", "target": {"kind": "list", "device_ids": ["pump-0"]}}
    deployment_id = c.call("POST", "/firmware/deployments", spec,
                           role=Role.ENGINEER).data["deployment_id"]
    busy = c.call("DELETE", "/firmware/pump@1.3.0", role=Role.ENGINEER)
    assert busy.status == 400 and "cancel the deployment first" in busy.error["message"]
    c.call("POST", f"/firmware/deployments/{deployment_id}/cancel", {"force": True},
           role=Role.ENGINEER)
    deleted = c.call("DELETE", "/firmware/pump@1.3.0", role=Role.ENGINEER, user="erin")
    assert deleted.status == 200 and deleted.data == {"firmware_id": "pump@1.3.0",
                                                      "deleted": True}
    trail = [(e.actor, e.action, e.subject, e.details.get("outcome"))
             for e in api.store.audit.entries()]
    assert ("technician-1", "firmware.delete", "pump@1.1.0", "denied") in trail
    assert ("erin", "firmware.delete", "pump@1.3.0", None) in trail


def test_plan_list_and_control_deployments_in_an_organization(api: Api, tmp_path: Path) -> None:
    _devices(api)
    trust_server_key(api, tmp_path / "codesign")
    c = api.client
    assert _upload(api, "2.0.0").status == 201
    target = {"kind": "list", "device_ids": ["pump-0", "pump-1", "pump-x", "env-1", "ghost"]}
    plan = c.call("POST", "/firmware/deployments/plan",
                  {"firmware_id": "pump@2.0.0", "target": target},
                  role=Role.SUPPORT, org="acme")
    assert plan.status == 200, plan.body
    assert plan.data["count"] == 2 and plan.data["targets"] == ["pump-0", "pump-1"]
    skipped = {s["reason"]: s["device_ids"] for s in plan.data["skipped"]}
    # another organization's pump is as unknown as a typo: its id cannot be probed
    assert skipped == {"unknown device": ["pump-x", "ghost"], "not a pump": ["env-1"]}
    group = c.call("POST", "/firmware/deployments/plan", {
        "firmware_id": "pump@2.0.0", "target": {"kind": "group", "device_types": ["pump"]}},
        org="acme").data
    assert group["count"] == 3
    assert c.call("POST", "/firmware/deployments/plan", {"firmware_id": "pump@2.0.0",
                  "target": {"kind": "list"}}).status == 400

    # A group deployment in an organization reaches only its own devices.
    made = c.call("POST", "/firmware/deployments", {
        "firmware_id": "pump@2.0.0", "target": {"kind": "group", "device_types": ["pump"]}},
        role=Role.ENGINEER, org="acme")
    assert made.status == 201, made.body
    deployment_id = made.data["deployment_id"]
    assert sorted(made.data["targets"]) == ["pump-0", "pump-1", "pump-2"]
    outsider = c.call("POST", "/firmware/deployments", {
        "firmware_id": "pump@2.0.0", "target": {"kind": "list", "device_ids": ["pump-0"]}},
        role=Role.ENGINEER, org="globex")
    assert outsider.status == 404

    listed = c.call("GET", "/firmware/deployments", role=Role.SUPPORT, org="acme")
    assert [d["deployment_id"] for d in listed.data["items"]] == [deployment_id]
    assert listed.data["items"][0]["executions"]["PENDING"] == 3
    assert listed.data["items"][0]["can_pause"] is True  # the hub pauses and resumes
    assert c.call("GET", "/firmware/deployments", org="globex").data["items"] == []
    assert c.call("GET", f"/firmware/deployments/{deployment_id}", org="globex").status == 404
    assert c.call("POST", f"/firmware/deployments/{deployment_id}/pause",
                  role=Role.ENGINEER, org="globex").status == 404

    api.store.deployments.release(deployment_id, ["pump-0"])
    api.store.deployments.update_execution(deployment_id, "pump-0", ExecutionStatus.FAILED)
    assert c.call("POST", f"/firmware/deployments/{deployment_id}/retry",
                  role=Role.SUPPORT, org="acme").status == 403
    retried = c.call("POST", f"/firmware/deployments/{deployment_id}/retry",
                     role=Role.ENGINEER, org="acme")
    assert retried.status == 200, retried.body
    assert api.store.deployments.execution(deployment_id, "pump-0").execution_number == 2
    paged = c.call("GET", "/firmware/deployments?limit=1").data
    assert len(paged["items"]) == 1 and paged["next"] == ""
