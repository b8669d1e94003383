"""The deployments port on AWS (plugins/aws/jobs/service.py): our record in
``iot-deployments-{stage}``, the rollout as an IoT job on moto's server.

Where moto has no behaviour to test against — executions that devices moved
(the Jobs device data plane), force-cancel of in-progress executions, retry
jobs for failed devices — the IoT client is put behind botocore's Stubber and
the requests are checked against IoT Jobs' documented shapes (docs/aws.md,
Gaps); DynamoDB and S3 stay on moto's server throughout."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from core.errors import IllegalTransition, NotFound, ValidationError
from core.model import Deployment, DeploymentStatus, Device, ExecutionStatus, Firmware, SemVer
from core.model.rollout import (
    AbortCriterion,
    ExponentialRate,
    FailureType,
    JobConfig,
    RetryCriterion,
    RolloutConfig,
)
from core.protocol.ota import presigned_placeholder
from tests.integration.aws.conftest import ApiCalls, AwsSandbox, record_calls

ACCOUNT = "123456789012"  # moto's account, as STS answers it
IMAGE = b"pump firmware 2.0.0" * 64
FIRMWARE_ID = "pump@2.0.0"
CONFIG = JobConfig(
    rollout=RolloutConfig(maximum_per_minute=40, exponential=ExponentialRate(
        base_rate_per_minute=4, increment_factor=1.5, notified=8)),
    abort=(AbortCriterion(FailureType.ALL, 25.0, 4),),
    in_progress_timeout_minutes=20,
    retries=(RetryCriterion(FailureType.FAILED, 1),),
)
T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@dataclass
class JobsFleet:
    aws: AwsSandbox
    backend: Any  # plugins.aws.backend.AwsBackend
    service: Any  # plugins.aws.jobs.service.IotJobsDeploymentService
    iot: Any  # the backend's IoT client (Stubber goes on it)
    db: ApiCalls
    iot_calls: ApiCalls

    @property
    def table(self) -> str:
        return f"iot-deployments-{self.aws.stage}"

    def arn(self, device: str) -> str:
        return f"arn:aws:iot:{self.aws.region}:{ACCOUNT}:thing/{device}"


@pytest.fixture
def fleet(aws: AwsSandbox) -> JobsFleet:
    from plugins.aws.backend import build_aws_backend_for
    from plugins.aws.dynamodb.tables import TABLES, create_tables
    from plugins.aws.firmware.s3 import S3FirmwareRepository, create_bucket
    from plugins.aws.settings import AwsSettings

    settings = AwsSettings(region=aws.region, stage=aws.stage, endpoint_url=aws.endpoint_url,
                           page_size=2)
    backend = build_aws_backend_for(settings)
    wanted = {"devices", "organizations", "deployments"}
    create_tables(backend.clients.dynamodb, settings,
                  tuple(t for t in TABLES if t.role in wanted))
    create_bucket(backend.clients.client("s3"), settings)
    backend.registry.upsert_many(
        [Device(f"pump-{i}", device_type="pump", organization="acme", firmware_version="1.0.0")
         for i in range(5)])
    assert isinstance(backend.firmware, S3FirmwareRepository)
    backend.firmware.add(Firmware(SemVer.parse("2.0.0"), "pump", len(IMAGE),
                                  hashlib.sha256(IMAGE).hexdigest(), signature=b"sig",
                                  key_id="k"), IMAGE)
    iot = backend.clients.client("iot")
    return JobsFleet(aws, backend, backend.deployments, iot,
                     record_calls(backend.clients.dynamodb, "dynamodb"),
                     record_calls(iot, "iot"))


def a_deployment(targets: tuple[str, ...] = ("pump-0", "pump-1", "pump-2", "pump-3", "pump-4"),
                 **extra: Any) -> Deployment:
    return Deployment(
        firmware_id=FIRMWARE_ID, targets=targets, config=CONFIG, created_by="erin",
        description="pumps to 2.0.0",
        target_spec={"kind": "list", "device_ids": list(targets)},
        document={"operation": "ota", "version": "2.0.0",
                  "url": presigned_placeholder(f"firmware/{FIRMWARE_ID}"),
                  "sha256": hashlib.sha256(IMAGE).hexdigest(),
                  "manifest": {"payload": "e30", "signature": "c2ln"}}, **extra)


def test_a_deployment_is_our_record_in_dynamodb_and_an_iot_job_with_our_rollout(
        fleet: JobsFleet) -> None:
    from core.ports.deployments import DeploymentService

    svc = fleet.service
    assert isinstance(svc, DeploymentService)  # the backend's port, as OtaService gets it
    made = svc.create(a_deployment())
    assert made.status is DeploymentStatus.IN_PROGRESS  # IoT Jobs runs it at once

    (sent,) = fleet.iot_calls.named("CreateJob")
    assert sent["jobId"] == made.deployment_id
    assert sent["targets"] == [fleet.arn(f"pump-{i}") for i in range(5)]
    assert JobConfig.from_aws(sent) == CONFIG
    assert sent["jobExecutionsRolloutConfig"]["exponentialRate"]["rateIncreaseCriteria"] == {
        "numberOfNotifiedThings": 8}
    assert sent["abortConfig"]["criteriaList"][0]["failureType"] == "ALL"
    assert sent["presignedUrlConfig"]["roleArn"] == (
        f"arn:aws:iam::{ACCOUNT}:role/iot-firmware-presign-{fleet.aws.stage}")
    assert json.loads(sent["document"])["url"].startswith("${aws:iot:s3-presigned-url:https://")

    # What IoT Jobs does not keep is in our record.
    item = fleet.aws.client("dynamodb").get_item(
        TableName=fleet.table, Key={"deployment_id": {"S": made.deployment_id}})["Item"]
    assert item["firmware_id"] == {"S": FIRMWARE_ID}
    assert item["created_by"] == {"S": "erin"}
    assert json.loads(item["organizations"]["S"]) == ["acme"]
    assert json.loads(item["config"]["S"]) == CONFIG.to_aws()
    assert json.loads(item["target_spec"]["S"])["kind"] == "list"
    again = svc.get(made.deployment_id)
    assert (again.firmware_id, again.created_by, again.config, again.document) == (
        FIRMWARE_ID, "erin", CONFIG, made.document)

    svc.save_rollout_state(made.deployment_id, {"step": 2})
    assert svc.get(made.deployment_id).rollout_state == {"step": 2}
    with pytest.raises(NotFound):
        svc.save_rollout_state("ota-nope", {"step": 1})
    with pytest.raises(ValidationError, match="already exists"):
        svc.create(a_deployment(deployment_id=made.deployment_id))


def test_executions_are_read_page_by_page_and_counted(fleet: JobsFleet) -> None:
    svc = fleet.service
    made = svc.create(a_deployment())
    fleet.iot_calls.clear()
    executions = svc.executions(made.deployment_id)
    assert [e.device_id for e in executions] == [f"pump-{i}" for i in range(5)]
    assert {e.status for e in executions} == {ExecutionStatus.QUEUED}
    assert {e.deployment_id for e in executions} == {made.deployment_id}
    # Five executions at two a page: three ListJobExecutionsForJob requests.
    pages = fleet.iot_calls.named("ListJobExecutionsForJob")
    assert [p.get("maxResults") for p in pages] == [2, 2, 2]
    assert "nextToken" not in pages[0] and all(p.get("nextToken") for p in pages[1:])

    assert svc.counts(made.deployment_id) == {"QUEUED": 5, "PENDING": 0}
    one = svc.execution(made.deployment_id, "pump-3")
    assert (one.device_id, one.status) == ("pump-3", ExecutionStatus.QUEUED)
    with pytest.raises(NotFound):
        svc.execution(made.deployment_id, "pump-9")
    assert [e.deployment_id for e in svc.for_device("pump-3")] == [made.deployment_id]
    assert svc.for_device("pump-3", [ExecutionStatus.SUCCEEDED]) == []


def test_deployments_are_listed_newest_first_from_an_index_never_a_scan(
        fleet: JobsFleet) -> None:
    svc = fleet.service
    ids = [svc.create(a_deployment(("pump-0",))).deployment_id for _ in range(3)]
    fleet.db.clear()
    assert [d.deployment_id for d in svc.list()] == ids[::-1]
    queries = fleet.db.named("Query")
    assert "Scan" not in fleet.db.operations
    assert {q["IndexName"] for q in queries} == {"CreatedIndex"}
    assert all(q["ScanIndexForward"] is False and q["Limit"] == 2 for q in queries)
    assert len(queries) == 2 and "ExclusiveStartKey" in queries[1]  # 3 records, 2 a page


def test_cancel_then_force_cancel(fleet: JobsFleet) -> None:
    svc = fleet.service
    made = svc.create(a_deployment(("pump-0", "pump-1", "pump-2")))
    d_id = made.deployment_id
    fleet.iot_calls.clear()
    canceled = svc.cancel(d_id, reason="canceled by erin")
    assert canceled.status is DeploymentStatus.CANCELED and canceled.reason == "canceled by erin"
    assert fleet.iot_calls.named("CancelJob") == [
        {"jobId": d_id, "force": False, "comment": "canceled by erin"}]
    assert svc.counts(d_id) == {"CANCELED": 3, "PENDING": 0}
    assert {e.status for e in svc.executions(d_id)} == {ExecutionStatus.CANCELED}
    # Ended, every execution finished: the counts are kept and IoT Jobs is not asked again.
    fleet.iot_calls.clear()
    assert svc.counts(d_id) == {"CANCELED": 3, "PENDING": 0}
    assert [d.deployment_id for d in svc.list()] == [d_id]
    assert fleet.iot_calls.operations == set()

    fleet.iot_calls.clear()
    assert svc.cancel(d_id).status is DeploymentStatus.CANCELED  # again: nothing to send
    assert fleet.iot_calls.named("CancelJob") == []
    svc.cancel(d_id, force=True, reason="canceled by erin (forced)")
    assert [c["force"] for c in fleet.iot_calls.named("CancelJob")] == [True]
    job = fleet.aws.client("iot").describe_job(jobId=d_id)["job"]
    assert (job["status"], job["forceCanceled"]) == ("CANCELED", True)
    with pytest.raises(NotFound):
        svc.cancel("ota-unknown")


def test_only_force_cancels_what_devices_are_installing(fleet: JobsFleet) -> None:
    """moto never moves an execution to IN_PROGRESS (no device data plane), so
    IoT Jobs' answers for a device mid-install come from the Stubber."""
    svc = fleet.service
    d_id = svc.create(a_deployment(("pump-0", "pump-1"))).deployment_id
    svc.cancel(d_id)

    def listing(stub: Stubber) -> None:
        stub.add_response("list_job_executions_for_job", {"executionSummaries": [
            {"thingArn": fleet.arn("pump-0"), "jobExecutionSummary": {
                "status": "IN_PROGRESS", "executionNumber": 1, "queuedAt": T0,
                "startedAt": T0, "lastUpdatedAt": T0}},
            {"thingArn": fleet.arn("pump-1"), "jobExecutionSummary": {
                "status": "QUEUED", "executionNumber": 1, "queuedAt": T0,
                "lastUpdatedAt": T0}}]}, {"jobId": d_id, "maxResults": 2})

    with Stubber(fleet.iot) as stub:
        listing(stub)
        # canceled without force: the device installing goes on, the queued one is canceled
        assert [(e.device_id, e.status) for e in svc.executions(d_id)] == [
            ("pump-0", ExecutionStatus.IN_PROGRESS), ("pump-1", ExecutionStatus.CANCELED)]
        stub.add_response("describe_job", {"job": {"jobId": d_id, "status": "CANCELED",
                                                   "forceCanceled": False}}, {"jobId": d_id})
        stub.add_response("cancel_job", {"jobId": d_id},
                          {"jobId": d_id, "force": True, "comment": "forced"})
        listing(stub)
        svc.cancel(d_id, force=True, reason="forced")
        assert {e.status for e in svc.executions(d_id)} == {ExecutionStatus.CANCELED}
        stub.assert_no_pending_responses()


def test_a_swapped_image_is_refused_and_leaves_no_deployment(fleet: JobsFleet) -> None:
    repo = fleet.backend.firmware
    fleet.aws.client("s3").put_object(Bucket=repo.bucket, Key=repo.object_key(FIRMWARE_ID),
                                      Body=b"x" * len(IMAGE), ServerSideEncryption="AES256")
    d = a_deployment()
    with pytest.raises(ValidationError, match="stored image SHA-256 is"):
        fleet.service.create(d)
    assert fleet.iot_calls.named("CreateJob") == []
    assert fleet.service.list() == []
    with pytest.raises(NotFound):
        fleet.service.get(d.deployment_id)


def test_pause_and_resume_are_refused_and_release_is_iot_jobs_own(fleet: JobsFleet) -> None:
    svc = fleet.service
    d_id = svc.create(a_deployment(("pump-0", "pump-1"))).deployment_id
    with pytest.raises(IllegalTransition, match="pausing is not available on AWS IoT Jobs; "
                                                "cancel instead"):
        svc.set_status(d_id, DeploymentStatus.PAUSED, reason="paused by erin")
    with pytest.raises(IllegalTransition, match="resuming is not available"):
        svc.set_status(d_id, DeploymentStatus.IN_PROGRESS)
    with pytest.raises(NotFound):
        svc.set_status("ota-unknown", DeploymentStatus.PAUSED)
    assert svc.get(d_id).status is DeploymentStatus.IN_PROGRESS

    fleet.iot_calls.clear()
    assert svc.release(d_id, ["pump-0"]) == []  # IoT Jobs notifies by its rollout config
    assert not fleet.iot_calls.operations - {"DescribeJob"}
    with pytest.raises(ValidationError, match="pump-4 not a target"):
        svc.release(d_id, ["pump-4"])
    svc.cancel(d_id)
    with pytest.raises(IllegalTransition, match="released only while it runs"):
        svc.release(d_id, ["pump-0"])


def test_retrying_failed_devices_is_a_retry_job_for_them(fleet: JobsFleet) -> None:
    svc = fleet.service
    made = svc.create(a_deployment(("pump-0", "pump-1", "pump-2")))
    d_id = made.deployment_id
    retry_id = f"{d_id}-retry-1"
    summaries = {"pump-0": "FAILED", "pump-1": "SUCCEEDED", "pump-2": "TIMED_OUT"}

    def first_job(stub: Stubber) -> None:
        stub.add_response("list_job_executions_for_job", {"executionSummaries": [
            {"thingArn": fleet.arn(d), "jobExecutionSummary": {
                "status": s, "executionNumber": 1, "queuedAt": T0, "lastUpdatedAt": T0}}
            for d, s in summaries.items()]}, {"jobId": d_id, "maxResults": 2})

    expected = svc._jobs.job_request(made, job_id=retry_id, targets=("pump-0", "pump-2"))
    with Stubber(fleet.iot) as stub:
        stub.add_response("describe_job", {"job": {"jobId": d_id, "status": "IN_PROGRESS"}},
                          {"jobId": d_id})
        first_job(stub)
        stub.add_response("create_job", {"jobArn": "arn:job", "jobId": retry_id}, expected)
        again = svc.requeue(d_id, ["pump-0", "pump-1", "pump-2", "pump-9"])
        assert [(e.device_id, e.status, e.execution_number) for e in again] == [
            ("pump-0", ExecutionStatus.QUEUED, 2), ("pump-2", ExecutionStatus.QUEUED, 2)]

        # the deployment now reads both jobs (one DescribeJob each, then their
        # executions): the retry job's executions are the newest
        for job, status in ((d_id, "COMPLETED"), (retry_id, "IN_PROGRESS")):
            stub.add_response("describe_job", {"job": {"jobId": job, "status": status}},
                              {"jobId": job})
        first_job(stub)
        stub.add_response("list_job_executions_for_job", {"executionSummaries": [
            {"thingArn": fleet.arn("pump-0"), "jobExecutionSummary": {
                "status": "SUCCEEDED", "executionNumber": 1, "queuedAt": T0,
                "lastUpdatedAt": T0}},
            {"thingArn": fleet.arn("pump-2"), "jobExecutionSummary": {
                "status": "IN_PROGRESS", "executionNumber": 1, "queuedAt": T0,
                "lastUpdatedAt": T0}}]}, {"jobId": retry_id, "maxResults": 2})
        assert [(e.device_id, e.status.value, e.execution_number)
                for e in svc.executions(d_id)] == [
            ("pump-0", "SUCCEEDED", 2), ("pump-1", "SUCCEEDED", 1), ("pump-2", "IN_PROGRESS", 2)]
        stub.assert_no_pending_responses()
    item = fleet.aws.client("dynamodb").get_item(
        TableName=fleet.table, Key={"deployment_id": {"S": d_id}})["Item"]
    assert json.loads(item["attempts"]["S"])[1] == {"job_id": retry_id,
                                                    "devices": ["pump-0", "pump-2"]}
    other = svc.create(a_deployment(("pump-0",))).deployment_id  # the retry job is stubbed
    svc.cancel(other)
    with pytest.raises(IllegalTransition, match="was canceled; create a new one"):
        svc.requeue(other, ["pump-0"])


def test_execution_updates_go_to_iot_jobs(fleet: JobsFleet) -> None:
    """A device's report is UpdateJobExecution on the Jobs data plane (moto has
    none: Stubber); a cancellation is CancelJobExecution on moto's server."""
    svc = fleet.service
    d_id = svc.create(a_deployment(("pump-0", "pump-1"))).deployment_id
    current = svc.execution(d_id, "pump-0")
    data = fleet.backend.clients.client("iot-jobs-data")
    with Stubber(data) as stub:
        stub.add_response("update_job_execution", {"executionState": {
            "status": "IN_PROGRESS", "statusDetails": {"step": "download"},
            "versionNumber": current.version_number + 1}},
            {"jobId": d_id, "thingName": "pump-0", "status": "IN_PROGRESS",
             "statusDetails": {"step": "download"}, "expectedVersion": current.version_number,
             "includeJobExecutionState": True})
        moved = svc.update_execution(d_id, "pump-0", ExecutionStatus.IN_PROGRESS,
                                     status_details={"step": "download"},
                                     expected_version=current.version_number)
        stub.assert_no_pending_responses()
    assert (moved.status, moved.status_details, moved.version_number) == (
        ExecutionStatus.IN_PROGRESS, {"step": "download"}, current.version_number + 1)
    with pytest.raises(IllegalTransition, match="expected version"):
        svc.update_execution(d_id, "pump-0", ExecutionStatus.SUCCEEDED, expected_version=-5)
    with pytest.raises(IllegalTransition, match="set by AWS IoT Jobs itself"):
        svc.update_execution(d_id, "pump-0", ExecutionStatus.TIMED_OUT)

    canceled = svc.update_execution(d_id, "pump-1", ExecutionStatus.CANCELED)
    assert canceled.status is ExecutionStatus.CANCELED
    (sent,) = fleet.iot_calls.named("CancelJobExecution")
    assert sent == {"jobId": d_id, "thingName": "pump-1", "force": False}
    with pytest.raises(IllegalTransition, match="cannot go from CANCELED"):
        svc.update_execution(d_id, "pump-1", ExecutionStatus.SUCCEEDED)


def test_for_device_keeps_to_this_stages_deployments(fleet: JobsFleet) -> None:
    """Things are the account's: a job of another stage (or made by hand) on
    the same thing is not one of our deployments."""
    svc = fleet.service
    ours = svc.create(a_deployment(("pump-4",))).deployment_id
    fleet.aws.client("iot").create_job(jobId=f"other-{fleet.aws.stage}",
                                       targets=[fleet.arn("pump-4")], document="{}")
    assert [e.deployment_id for e in svc.for_device("pump-4")] == [ours]
