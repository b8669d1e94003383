"""The deployment use cases over the aws backend: OtaService (what the
console's wizard and monitor call) and the REST deployment routes over real
HTTP, with the deployments port on IoT Jobs (moto's server) and the record,
the registry and the audit trail in DynamoDB.

The aws backend keeps no list of trusted code-signing keys yet (docs/aws.md,
Gaps), so the API's TeamSigner is given one on SQLite; everything the
deployment itself touches is the aws backend's."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.crypto import codesign
from core.crypto.keystore import CodeSigningKeys
from core.errors import IllegalTransition, PermissionDenied, ValidationError
from core.model import DeploymentStatus, Device, Firmware, SemVer
from core.model.roles import Actor, Role
from core.model.rollout import JobConfig
from core.model.timeutil import utcnow
from core.ports.fleet_api.deployments import TargetSpec
from core.ports.signing_keys import TrustedKey
from core.store import Store
from tests.integration.api.conftest import Client
from tests.integration.aws.conftest import ApiCalls, AwsSandbox, record_calls

IMAGE = b"\x7fELF pump firmware 3.0.0" * 100
FIRMWARE_ID = "pump@3.0.0"
CONFIG = {
    "jobExecutionsRolloutConfig": {"maximumPerMinute": 30, "exponentialRate": {
        "baseRatePerMinute": 3, "incrementFactor": 2.0,
        "rateIncreaseCriteria": {"numberOfSucceededThings": 5}}},
    "abortConfig": {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL",
                                      "thresholdPercentage": 10.0,
                                      "minNumberOfExecutedThings": 5}]},
    "timeoutConfig": {"inProgressTimeoutInMinutes": 15},
}


@dataclass
class AwsApi:
    aws: AwsSandbox
    backend: Any
    services: Any  # core.services.wiring.Services over the aws backend
    client: Client
    iot: ApiCalls


@pytest.fixture
def aws_api(aws: AwsSandbox, tmp_path: Path) -> Iterator[AwsApi]:
    from plugins.api.app import make_handler
    from plugins.api.auth import TokenSigner
    from plugins.api.wiring import build_api_services
    from plugins.api.wsgi import ApiWsgiApp, serve, serve_in_thread
    from plugins.aws.backend import build_aws_backend_for
    from plugins.aws.dynamodb.tables import TABLES, create_tables
    from plugins.aws.firmware.s3 import S3FirmwareRepository, create_bucket
    from plugins.aws.settings import AwsSettings

    settings = AwsSettings(region=aws.region, stage=aws.stage, endpoint_url=aws.endpoint_url,
                           page_size=2)
    backend = build_aws_backend_for(settings)
    wanted = {"devices", "organizations", "deployments", "audit"}
    create_tables(backend.clients.dynamodb, settings,
                  tuple(t for t in TABLES if t.role in wanted))
    create_bucket(backend.clients.client("s3"), settings)
    backend.registry.upsert_many(
        [Device(f"pump-{i}", device_type="pump", organization="acme", firmware_version="2.0.0")
         for i in range(3)] + [Device("pump-x", device_type="pump", organization="globex")])
    keys = CodeSigningKeys(tmp_path / "codesign")
    signing = keys.signing_key()
    assert isinstance(backend.firmware, S3FirmwareRepository)
    backend.firmware.add(Firmware(SemVer.parse("3.0.0"), "pump", len(IMAGE),
                                  hashlib.sha256(IMAGE).hexdigest(),
                                  codesign.sign(signing, IMAGE), codesign.key_id(signing)),
                         IMAGE)
    with Store.open(f"sqlite:///{tmp_path / 'team-keys.db'}") as sql:
        sql.trusted_keys.add(TrustedKey(codesign.key_id(signing), "api-server", keys.public_pem(),
                                        added_by="ada", added_at=utcnow()))
        backend.trusted_keys = sql.trusted_keys
        services = build_api_services(backend, signing_keys=keys)
        tokens = TokenSigner.from_dir(tmp_path / "api")
        server = serve(ApiWsgiApp(make_handler(lambda: services), tokens), "127.0.0.1", 0)
        serve_in_thread(server)
        try:
            yield AwsApi(aws, backend, services,
                         Client(f"http://127.0.0.1:{server.server_port}", tokens),
                         record_calls(backend.clients.client("iot"), "iot"))
        finally:
            server.shutdown()
            server.server_close()


def body(device_ids: list[str]) -> dict[str, Any]:
    return {"firmware_id": FIRMWARE_ID, "target": {"kind": "list", "device_ids": device_ids},
            "config": CONFIG, "description": "pumps to 3.0.0"}


def test_the_deployment_routes_run_an_iot_job(aws_api: AwsApi) -> None:
    c = aws_api.client
    made = c.call("POST", "/firmware/deployments", body(["pump-0", "pump-1", "pump-2"]),
                  role=Role.ENGINEER, user="erin", org="acme")
    assert made.status == 201, made.body
    d_id = made.data["deployment_id"]
    assert made.data["created_by"] == "erin" and made.data["config"] == CONFIG

    # A real IoT job with the rollout and abort configuration the engineer chose,
    # and the signed manifest in its document.
    (sent,) = aws_api.iot.named("CreateJob")
    assert sent["jobId"] == d_id
    assert sent["jobExecutionsRolloutConfig"] == CONFIG["jobExecutionsRolloutConfig"]
    assert sent["abortConfig"] == CONFIG["abortConfig"]
    assert sent["timeoutConfig"] == CONFIG["timeoutConfig"]
    document = json.loads(sent["document"])
    signed = json.loads(base64.b64decode(document["manifest"]["payload"]))
    assert document["manifest"]["signature"]
    assert signed["sha256"] == hashlib.sha256(IMAGE).hexdigest()
    job = aws_api.aws.client("iot").describe_job(jobId=d_id)["job"]
    assert job["timeoutConfig"] == CONFIG["timeoutConfig"]

    status = c.call("GET", f"/firmware/deployments/{d_id}", role=Role.SUPPORT, org="acme")
    assert status.status == 200, status.body
    assert status.data["status"] == "IN_PROGRESS"
    assert status.data["executions"] == {"QUEUED": 3, "PENDING": 0}
    assert status.data["can_pause"] is False  # consoles grey Pause out before any click
    executions = c.call("GET", f"/firmware/deployments/{d_id}/executions", role=Role.SUPPORT,
                        org="acme")
    assert [(e["device_id"], e["status"]) for e in executions.data["items"]] == [
        ("pump-0", "QUEUED"), ("pump-1", "QUEUED"), ("pump-2", "QUEUED")]
    listed = c.call("GET", "/firmware/deployments", role=Role.SUPPORT, org="acme")
    assert [d["deployment_id"] for d in listed.data["items"]] == [d_id]
    assert [d["can_pause"] for d in listed.data["items"]] == [False]
    assert c.call("GET", "/firmware/deployments", org="globex").data["items"] == []
    assert c.call("GET", f"/firmware/deployments/{d_id}", org="globex").status == 404

    # Pausing is refused with the reason and the way out; nothing changes.
    paused = c.call("POST", f"/firmware/deployments/{d_id}/pause", role=Role.ENGINEER,
                    org="acme")
    assert paused.status == 409, paused.body
    assert "pausing is not available on AWS IoT Jobs; cancel instead" in paused.error["message"]

    canceled = c.call("POST", f"/firmware/deployments/{d_id}/cancel", {"force": True},
                      role=Role.ENGINEER, user="erin", org="acme")
    assert canceled.status == 200, canceled.body
    assert canceled.data["status"] == "CANCELED"
    assert canceled.data["executions"] == {"CANCELED": 3, "PENDING": 0}
    job = aws_api.aws.client("iot").describe_job(jobId=d_id)["job"]
    assert (job["status"], job["forceCanceled"]) == ("CANCELED", True)
    assert job["comment"] == "canceled by erin (forced)"


def test_callers_without_the_role_get_403_and_start_nothing(aws_api: AwsApi) -> None:
    c = aws_api.client
    for role in (Role.TECHNICIAN, Role.SUPPORT):
        refused = c.call("POST", "/firmware/deployments", body(["pump-0"]), role=role)
        assert refused.status == 403, refused.body
    assert aws_api.iot.named("CreateJob") == []
    d_id = c.call("POST", "/firmware/deployments", body(["pump-0"]),
                  role=Role.ENGINEER).data["deployment_id"]
    for action, payload in (("cancel", {"force": True}), ("pause", None), ("resume", None),
                            ("retry", None)):
        for role in (Role.TECHNICIAN, Role.SUPPORT):
            refused = c.call("POST", f"/firmware/deployments/{d_id}/{action}", payload,
                             role=role)
            assert refused.status == 403, (action, role, refused.body)
    assert aws_api.iot.named("CancelJob") == []
    assert c.call("GET", f"/firmware/deployments/{d_id}").data["status"] == "IN_PROGRESS"
    denied = [e for e in aws_api.backend.audit.entries() if e.action == "deployment.cancel"]
    assert len(denied) == 2 and {e.details["outcome"] for e in denied} == {"denied"}


def test_a_swapped_image_is_refused_through_the_api(aws_api: AwsApi) -> None:
    repo = aws_api.backend.firmware
    aws_api.aws.client("s3").put_object(Bucket=repo.bucket, Key=repo.object_key(FIRMWARE_ID),
                                        Body=b"e" * len(IMAGE), ServerSideEncryption="AES256")
    refused = aws_api.client.call("POST", "/firmware/deployments", body(["pump-0"]),
                                  role=Role.ENGINEER)
    assert refused.status == 400, refused.body
    assert "stored image SHA-256 is" in refused.error["message"]
    assert aws_api.iot.named("CreateJob") == []
    assert aws_api.client.call("GET", "/firmware/deployments").data["items"] == []


def test_ota_service_creates_follows_and_cancels_on_aws(aws_api: AwsApi) -> None:
    """The use cases the console's wizard and monitor call, in process."""
    ota = aws_api.services.deployments
    erin = Actor("erin", Role.ENGINEER, "acme")
    d = ota.create(erin, FIRMWARE_ID, TargetSpec(kind="list", device_ids=("pump-1", "pump-2")),
                   JobConfig.from_aws(CONFIG))
    progress = ota.status(erin, d.deployment_id)
    assert progress.deployment.status is DeploymentStatus.IN_PROGRESS
    assert progress.counts == {"QUEUED": 2, "PENDING": 0}
    assert progress.can_pause is False
    assert [e.device_id for e in ota.executions(erin, d.deployment_id)] == ["pump-1", "pump-2"]
    with pytest.raises(IllegalTransition, match="pausing is not available"):
        ota.pause(erin, d.deployment_id)
    with pytest.raises(PermissionDenied):
        ota.cancel(Actor("tom", Role.TECHNICIAN, "acme"), d.deployment_id)
    assert ota.cancel(erin, d.deployment_id).status is DeploymentStatus.CANCELED
    with pytest.raises(ValidationError, match="no device matches"):
        ota.create(erin, FIRMWARE_ID, TargetSpec(kind="list", device_ids=("pump-x",)),
                   JobConfig())
