"""Uploading an image straight to S3 through the REST API's
``/firmware/uploads`` on the aws backend, end to end over real HTTP (the API
served locally, moto's server as S3): the bytes go to presigned URLs with a
plain HTTP client, never through the API; a multipart upload resumes after an
interruption from the parts S3 lists; completion checks the SHA-256 and the
signature (by a trusted key) before the image enters the library.
"""

from __future__ import annotations

import base64
import hashlib
import os
import urllib.request
from pathlib import Path
from typing import Any

from core.crypto import codesign
from core.model.roles import Role
from tests.integration.aws.firmware_api_fixtures import FirmwareApi, firmware_api, keys_in

__all__ = ["firmware_api"]

MiB = 1 << 20
PART = 5 * MiB  # S3's smallest part


def put(part: dict[str, Any], data: bytes) -> int:
    # an explicit type: urllib would send a form type, which the server parses as a form
    request = urllib.request.Request(part["url"], data=data, method="PUT", headers={
        "Content-Type": "application/octet-stream", **part["headers"]})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return int(answer.status)


def start(api: FirmwareApi, image: bytes, version: str, **extra: Any) -> Any:
    return api.client.call("POST", "/firmware/uploads", {
        "device_type": "pump", "version": version, "size": len(image),
        "sha256": hashlib.sha256(image).hexdigest(), **extra}, role=Role.ENGINEER,
        user="erin")


def complete(api: FirmwareApi, ticket: str, image: bytes, **extra: Any) -> Any:
    signature = codesign.sign_digest(api.erin.signing_key(), hashlib.sha256(image).digest())
    return api.client.call("POST", f"/firmware/uploads/{ticket}/complete", {
        "signature_base64": base64.b64encode(signature).decode(), **extra},
        role=Role.ENGINEER, user="erin")


def stored(api: FirmwareApi, firmware_id: str) -> bytes | None:
    s3 = api.aws.client("s3")
    try:
        return bytes(s3.get_object(Bucket=f"iot-firmware-{api.aws.stage}",
                                   Key=api.backend.firmware.object_key(firmware_id))
                     ["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def test_a_single_presigned_put_then_completion_adds_it_to_the_library(
        firmware_api: FirmwareApi) -> None:
    api = firmware_api
    api.trust(api.erin, "erin")
    image = os.urandom(300_000)
    begun = start(api, image, "3.0.0")
    assert begun.status == 201, begun.body
    d = begun.data
    assert d["method"] == "single" and d["held"] == [] and len(d["parts"]) == 1
    (part,) = d["parts"]
    assert (part["start"], part["end"]) == (0, len(image))
    assert part["headers"]["x-amz-server-side-encryption"] == "AES256"
    assert put(part, image) == 200
    # not in the library before completion
    assert api.client.call("GET", "/firmware/pump@3.0.0", role=Role.SUPPORT).status == 404

    done = complete(api, d["upload"], image, release_notes="faster pump start")
    assert done.status == 201, done.body
    assert done.data["firmware_id"] == "pump@3.0.0" and done.data["signed_by"] == "erin"
    assert done.data["sha256"] == hashlib.sha256(image).hexdigest()
    assert done.data["release_notes"] == "faster pump start"
    verified = api.client.call("POST", "/firmware/pump@3.0.0/verify", role=Role.SUPPORT)
    assert verified.data["ok"] is True, verified.data
    (entry,) = [e for e in api.audit() if e.action == "firmware.import"]
    assert entry.actor == "erin" and entry.details["via"] == "direct upload"

    again = start(api, image, "3.0.0")
    assert again.status == 400 and "already in the library" in again.error["message"]


def test_a_multipart_upload_resumes_after_an_interruption(firmware_api: FirmwareApi) -> None:
    api = firmware_api
    api.trust(api.erin, "erin")
    image = os.urandom(2 * PART + 123_456)  # three parts, the last short
    begun = start(api, image, "4.0.0", part_size=PART)
    assert begun.status == 201, begun.body
    d = begun.data
    assert d["method"] == "multipart" and d["part_count"] == 3
    assert [(p["part_number"], p["start"], p["end"]) for p in d["parts"]] == [
        (1, 0, PART), (2, PART, 2 * PART), (3, 2 * PART, len(image))]
    assert put(d["parts"][0], image[:PART]) == 200
    # the connection drops during part 2: a console restarted later asks what S3 holds
    premature = complete(api, d["upload"], image)
    assert premature.status == 400 and "parts [2, 3] of 3 are missing" in \
        premature.error["message"]
    resumed = api.client.call("GET", f"/firmware/uploads/{d['upload']}", role=Role.ENGINEER)
    assert resumed.status == 200, resumed.body
    assert resumed.data["held"] == [1]
    assert [p["part_number"] for p in resumed.data["parts"]] == [2, 3]
    for part in resumed.data["parts"]:
        assert put(part, image[part["start"]:part["end"]]) == 200
    done = complete(api, d["upload"], image)
    assert done.status == 201, done.body
    assert stored(api, "pump@4.0.0") == image
    (entry,) = [e for e in api.audit() if e.action == "firmware.import"]
    assert entry.details["parts"] == 3


def test_bytes_that_do_not_hash_to_the_declared_sha256_are_refused_and_deleted(
        firmware_api: FirmwareApi) -> None:
    api = firmware_api
    api.trust(api.erin, "erin")
    declared = os.urandom(50_000)
    sent = os.urandom(50_000)
    d = start(api, declared, "5.0.0").data
    assert put(d["parts"][0], sent) == 200
    refused = complete(api, d["upload"], declared)
    assert refused.status == 400 and "SHA-256" in refused.error["message"]
    assert stored(api, "pump@5.0.0") is None
    assert api.client.call("GET", "/firmware/pump@5.0.0", role=Role.SUPPORT).status == 404


def test_a_signature_by_an_untrusted_key_is_refused_and_nothing_published(
        firmware_api: FirmwareApi, tmp_path: Path) -> None:
    api = firmware_api
    image = os.urandom(40_000)
    d = start(api, image, "6.0.0").data
    assert put(d["parts"][0], image) == 200
    mallory = keys_in(tmp_path / "mallory")
    signature = codesign.sign_digest(mallory.signing_key(), hashlib.sha256(image).digest())
    refused = api.client.call("POST", f"/firmware/uploads/{d['upload']}/complete", {
        "signature_base64": base64.b64encode(signature).decode()}, role=Role.ENGINEER)
    assert refused.status == 400 and "trusted" in refused.error["message"]
    assert api.backend.firmware.list() == []


def test_abort_drops_the_parts(firmware_api: FirmwareApi) -> None:
    api = firmware_api
    image = os.urandom(PART + 10)
    d = start(api, image, "7.0.0", multipart=True, part_size=PART).data
    assert put(d["parts"][0], image[:PART]) == 200
    aborted = api.client.call("DELETE", f"/firmware/uploads/{d['upload']}",
                              role=Role.ENGINEER)
    assert aborted.status == 200 and aborted.data == {"firmware_id": "pump@7.0.0",
                                                      "aborted": True}
    gone = api.client.call("GET", f"/firmware/uploads/{d['upload']}", role=Role.ENGINEER)
    assert gone.status == 404, gone.body
    s3 = api.aws.client("s3")
    assert s3.list_multipart_uploads(Bucket=f"iot-firmware-{api.aws.stage}").get(
        "Uploads", []) == []


def test_a_tampered_ticket_is_a_clear_error(firmware_api: FirmwareApi) -> None:
    reply = firmware_api.client.call("GET", "/firmware/uploads/not-a-ticket",
                                     role=Role.ENGINEER)
    assert reply.status == 400 and "upload ticket" in reply.error["message"]


REFUSED_FOR_SUPPORT: list[tuple[str, str, Any]] = [
    ("POST", "/firmware/uploads", {"device_type": "pump", "version": "1.0.0", "size": 10,
                                   "sha256": "0" * 64}),
    ("GET", "/firmware/uploads/garbage", None),
    ("POST", "/firmware/uploads/garbage/complete", {"signature_base64": "!!"}),
    ("DELETE", "/firmware/uploads/garbage", None),
    ("POST", "/firmware/upload", {"device_type": "pump", "version": "x",
                                  "image_base64": "not base64!"}),
    ("DELETE", "/firmware/pump@9.9.9", None),
    ("DELETE", "/firmware/not-an-id", None),
    ("POST", "/firmware/deployments", {"firmware_id": "pump@9.9.9",
                                       "target": {"kind": "list", "device_ids": ["nobody"]}}),
    ("POST", "/firmware/deployments", {"firmware_id": "no version here",
                                       "target": {"kind": "list", "device_ids": ["pump-0"]},
                                       "config": {"abortConfig": "nonsense"}}),
    ("POST", "/firmware/deployments/nope/cancel", {"force": True}),
    ("POST", "/firmware/deployments/nope/retry", None),
    ("POST", "/firmware/keys/0123456789abcdef/revoke", None),
]


def test_support_is_refused_before_anything_is_looked_up(firmware_api: FirmwareApi) -> None:
    """403, never a 404 or 400 that would tell what exists or what is malformed;
    each refusal is in the audit trail."""
    for method, path, body in REFUSED_FOR_SUPPORT:
        reply = firmware_api.client.call(method, path, body, role=Role.SUPPORT, user="sam",
                                         org="acme")
        assert reply.status == 403, (method, path, reply.body)
    denied = [e for e in firmware_api.audit() if e.details.get("outcome") == "denied"]
    assert [e.actor for e in denied] == ["sam"] * len(REFUSED_FOR_SUPPORT)
