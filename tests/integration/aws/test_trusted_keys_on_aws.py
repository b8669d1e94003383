"""The team's trusted code-signing keys on the AWS backend (DynamoDB
``iot-trusted-keys-{stage}``), through the REST API over real HTTP with
moto's server behind it: the server holds no private key, an engineer signs
on her own machine, and only a signature by a key an admin trusted is
accepted — for an image and for a deployment's manifest, which is checked
with the stored image before any IoT job exists."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

from core.crypto import codesign
from core.crypto.keystore import CodeSigningKeys
from core.model import Firmware
from core.model.roles import Role
from core.ports.signing_keys import TrustedKey
from core.protocol.ota import SignedManifest
from core.services.ota import manifest_bytes
from tests.integration.aws.firmware_api_fixtures import FirmwareApi, firmware_api, keys_in

__all__ = ["firmware_api"]

IMAGE = b"\x7fELF pump firmware 3.0.0" * 200
CONFIG = {"jobExecutionsRolloutConfig": {"maximumPerMinute": 10},
          "abortConfig": {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL",
                                            "thresholdPercentage": 20.0,
                                            "minNumberOfExecutedThings": 2}]}}


def upload_body(signature: bytes | None, version: str = "3.0.0") -> dict[str, object]:
    body: dict[str, object] = {"device_type": "pump", "version": version,
                               "image_base64": base64.b64encode(IMAGE).decode()}
    if signature is not None:
        body["signature_base64"] = base64.b64encode(signature).decode()
    return body


def test_the_key_list_lives_in_dynamodb_and_is_kept_by_admins_only(
        firmware_api: FirmwareApi) -> None:
    api = firmware_api
    c = api.client
    pem = api.erin.public_pem().decode()
    refused = c.call("POST", "/firmware/keys", {"public_pem": pem, "owner": "erin"},
                     role=Role.ENGINEER, user="erin")
    assert refused.status == 403, refused.body
    added = api.trust(api.erin, "erin")
    key_id = added["key_id"]
    assert key_id == api.erin.current_key_id() and added["added_by"] == "ada"

    # stored in the stage's table, public key only
    item = api.aws.client("dynamodb").get_item(
        TableName=f"iot-trusted-keys-{api.aws.stage}",
        Key={"kind": {"S": "key"}, "key_id": {"S": key_id}})["Item"]
    assert item["owner"]["S"] == "erin"
    assert "PRIVATE" not in item["public_pem"]["S"] and "PUBLIC KEY" in item["public_pem"]["S"]

    again = c.call("POST", "/firmware/keys", {"public_pem": pem, "owner": "erin"},
                   role=Role.ADMIN)
    assert again.status == 400 and "already in the trust list" in again.error["message"]
    listed = c.call("GET", "/firmware/keys", role=Role.SUPPORT)
    assert [k["key_id"] for k in listed.data["items"]] == [key_id]

    revoked = c.call("POST", f"/firmware/keys/{key_id}/revoke", role=Role.ADMIN, user="ada")
    assert revoked.status == 200 and revoked.data["revoked_by"] == "ada"
    twice = c.call("POST", f"/firmware/keys/{key_id}/revoke", role=Role.ADMIN)
    assert twice.status == 400 and "already revoked by ada" in twice.error["message"]
    assert c.call("GET", "/firmware/keys", role=Role.SUPPORT).data["items"] == []
    everyone = c.call("GET", "/firmware/keys?include_revoked=true", role=Role.SUPPORT)
    assert [k["active"] for k in everyone.data["items"]] == [False]

    actions = [(e.action, e.details.get("outcome")) for e in api.audit()]
    assert ("firmware.key.add", "denied") in actions
    assert ("firmware.key.add", None) in actions and ("firmware.key.revoke", None) in actions


def test_only_an_image_signed_by_a_trusted_key_enters_the_library(
        firmware_api: FirmwareApi, tmp_path: Path) -> None:
    api = firmware_api
    c = api.client
    # The server has no key: an unsigned image cannot be signed there.
    unsigned = c.call("POST", "/firmware/upload", upload_body(None), role=Role.ENGINEER)
    assert unsigned.status == 400, unsigned.body

    mallory = keys_in(tmp_path / "mallory")
    untrusted = c.call("POST", "/firmware/upload",
                       upload_body(mallory.sign(IMAGE)[0]), role=Role.ENGINEER, user="mallory")
    assert untrusted.status == 400
    assert "does not verify against any trusted" in untrusted.error["message"]

    api.trust(api.erin, "erin")
    signed = c.call("POST", "/firmware/upload", upload_body(api.erin.sign(IMAGE)[0]),
                    role=Role.ENGINEER, user="erin")
    assert signed.status == 201, signed.body
    assert signed.data["key_id"] == api.erin.current_key_id()
    assert signed.data["signed_by"] == "erin"
    verified = c.call("POST", "/firmware/pump@3.0.0/verify", role=Role.SUPPORT)
    assert verified.data["ok"] is True, verified.data
    assert "trusted by the team" in verified.data["message"]

    imports = [e for e in api.audit() if e.action == "firmware.import"]
    assert [(e.actor, e.subject, e.details["key_id"]) for e in imports] == [
        ("erin", "pump@3.0.0", api.erin.current_key_id())]


def _signed_manifest(api: FirmwareApi, keys: CodeSigningKeys, firmware: Firmware,
                     **changes: object) -> dict[str, object]:
    """What an engineer's console sends: the manifest signed with her key
    (``changes`` alter it before signing, as a forger with a trusted key would)."""
    payload = manifest_bytes(firmware, key_id=keys.current_key_id(),
                             issued_at=int(time.time()))
    if changes:
        raw = json.loads(payload)
        raw.update(changes)
        payload = json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
    signature, key_id = keys.sign(payload)
    return SignedManifest(payload, signature, key_id).to_json()


def test_a_deployment_needs_a_manifest_signed_by_a_trusted_key_and_the_image_it_names(
        firmware_api: FirmwareApi, tmp_path: Path) -> None:
    api = firmware_api
    c = api.client
    api.trust(api.erin, "erin")
    assert c.call("POST", "/firmware/upload", upload_body(api.erin.sign(IMAGE)[0]),
                  role=Role.ENGINEER).status == 201
    firmware = api.backend.firmware.get_by_id("pump@3.0.0")
    body = {"firmware_id": "pump@3.0.0", "config": CONFIG,
            "target": {"kind": "list", "device_ids": ["pump-0", "pump-1"]}}
    iot = api.aws.client("iot")

    # The moto server outlives a test (one per test process): jobs earlier tests
    # created are there too, and job ids are not named by stage.
    before = {j["jobId"] for j in iot.list_jobs()["jobs"]}

    def jobs() -> list[str]:
        return [j["jobId"] for j in iot.list_jobs()["jobs"] if j["jobId"] not in before]

    # no manifest, and no key on the server to sign one
    plain = c.call("POST", "/firmware/deployments", body, role=Role.ENGINEER, org="acme")
    assert plain.status == 400 and "code-signing key" in plain.error["message"]
    # signed by a key nobody trusted
    mallory = keys_in(tmp_path / "mallory")
    untrusted = c.call("POST", "/firmware/deployments",
                       {**body, "manifest": _signed_manifest(api, mallory, firmware)},
                       role=Role.ENGINEER, org="acme")
    assert untrusted.status == 400, untrusted.body
    assert f"signed by key {mallory.current_key_id()}, which is not in the team's trusted" \
        in untrusted.error["message"]
    # a trusted key, but the manifest vouches for other bytes
    other = _signed_manifest(api, api.erin, firmware, sha256="0" * 64)
    forged = c.call("POST", "/firmware/deployments", {**body, "manifest": other},
                    role=Role.ENGINEER, org="acme")
    assert forged.status == 400 and "says sha256" in forged.error["message"]
    # a trusted manifest whose signature was made over other bytes
    good = _signed_manifest(api, api.erin, firmware)
    broken = {**good, "signature": base64.b64encode(
        api.erin.sign(b"something else")[0]).decode()}
    assert c.call("POST", "/firmware/deployments", {**body, "manifest": broken},
                  role=Role.ENGINEER, org="acme").status == 400
    assert jobs() == []

    # the image swapped in S3 behind the library's back: refused before CreateJob
    s3 = api.aws.client("s3")
    bucket = f"iot-firmware-{api.aws.stage}"
    key = api.backend.firmware.object_key("pump@3.0.0")
    s3.put_object(Bucket=bucket, Key=key, Body=b"evil" * 10, ServerSideEncryption="AES256")
    swapped = c.call("POST", "/firmware/deployments", {**body, "manifest": good},
                     role=Role.ENGINEER, org="acme")
    assert swapped.status == 400 and "no longer matches" in swapped.error["message"]
    assert jobs() == []
    s3.put_object(Bucket=bucket, Key=key, Body=IMAGE, ServerSideEncryption="AES256")

    made = c.call("POST", "/firmware/deployments", {**body, "manifest": good},
                  role=Role.ENGINEER, user="erin", org="acme")
    assert made.status == 201, made.body
    d_id = made.data["deployment_id"]
    assert jobs() == [d_id]
    document = json.loads(iot.get_job_document(jobId=d_id)["document"])
    assert document["manifest"] == good  # exactly what erin signed
    assert document["firmware"]["sha256"] == hashlib.sha256(IMAGE).hexdigest()
    created = [e for e in api.audit() if e.action == "deployment.create"]
    assert created[-1].details["manifest_signed_by"] == api.erin.current_key_id()


def test_an_image_signed_by_a_revoked_key_is_refused(firmware_api: FirmwareApi) -> None:
    api = firmware_api
    key_id = api.trust(api.erin, "erin")["key_id"]
    assert api.client.call("POST", f"/firmware/keys/{key_id}/revoke").status == 200
    reply = api.client.call("POST", "/firmware/upload",
                            upload_body(api.erin.sign(IMAGE)[0], "3.1.0"), role=Role.ENGINEER)
    assert reply.status == 400 and "trusted" in reply.error["message"]
    assert api.backend.firmware.list() == []


def test_the_store_port_on_dynamodb(firmware_api: FirmwareApi) -> None:
    """The adapter directly: a revoked key is not trusted again, listing pages."""
    from core.errors import NotFound, ValidationError
    from core.model.timeutil import utcnow

    store = firmware_api.backend.trusted_keys
    keys = [codesign.generate_key() for _ in range(3)]
    for i, k in enumerate(keys):  # page size 2: three keys take two Query pages
        store.add(TrustedKey(codesign.key_id(k), f"owner-{i}", codesign.public_pem(k),
                             added_by="ada", added_at=utcnow()))
    assert [k.owner for k in store.list()] == ["owner-0", "owner-1", "owner-2"]
    first = codesign.key_id(keys[0])
    store.revoke(first, "ada", utcnow())
    try:
        store.add(TrustedKey(first, "owner-0", codesign.public_pem(keys[0]), added_by="ada",
                             added_at=utcnow()))
        raise AssertionError("a revoked key was trusted again")
    except ValidationError as exc:
        assert "revoked" in str(exc)
    try:
        store.get("0123456789abcdef")
        raise AssertionError("an unknown key was found")
    except NotFound:
        pass
