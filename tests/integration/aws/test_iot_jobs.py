"""Deployments as AWS IoT Jobs: our rollout model's configuration in CreateJob,
the image URL as IoT's presigned-URL placeholder naming the firmware bucket,
DescribeJob and cancel against moto's server; what moto leaves out of
DescribeJob (rollout, abort, retry) and execution paging are checked on
DescribeJob's documented response shape with botocore's Stubber."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from botocore.stub import Stubber

from core.errors import ValidationError
from core.model import Firmware, SemVer
from core.model.deployment import Deployment
from core.model.rollout import (
    AbortCriterion,
    ExponentialRate,
    FailureType,
    JobConfig,
    RetryCriterion,
    RolloutConfig,
)
from core.protocol.ota import presigned_placeholder
from tests.integration.aws.conftest import AwsSandbox, record_calls

ACCOUNT = "123456789012"  # moto's account
ROLE = f"arn:aws:iam::{ACCOUNT}:role/iot-firmware-presign"
IMAGE = b"pump firmware 1.4.0" * 100

CONFIG = JobConfig(
    rollout=RolloutConfig(maximum_per_minute=50, exponential=ExponentialRate(
        base_rate_per_minute=5, increment_factor=2.0, succeeded=10)),
    abort=(AbortCriterion(FailureType.FAILED, 20.0, 10),),
    in_progress_timeout_minutes=30,
    retries=(RetryCriterion(FailureType.TIMED_OUT, 2),),
)


def jobs_over(aws: AwsSandbox, page_size: int = 100) -> tuple[Any, Any, Any]:
    from plugins.aws.backend import build_aws_backend_for
    from plugins.aws.firmware.s3 import S3FirmwareRepository, create_bucket
    from plugins.aws.jobs import IotJobs
    from plugins.aws.settings import AwsSettings

    settings = AwsSettings(region=aws.region, stage=aws.stage, endpoint_url=aws.endpoint_url)
    backend = build_aws_backend_for(settings)
    create_bucket(backend.clients.client("s3"), settings)
    iot = backend.clients.client("iot")
    assert isinstance(backend.firmware, S3FirmwareRepository)
    jobs = IotJobs(iot, backend.firmware, region=aws.region, account_id=ACCOUNT,
                   presign_role_arn=ROLE, page_size=page_size)
    return jobs, backend.firmware, iot


def deployment() -> Deployment:
    return Deployment(
        firmware_id="pump@1.4.0", targets=("pump-1", "pump-2"), config=CONFIG,
        description="pumps to 1.4.0",
        document={"operation": "ota", "version": "1.4.0",
                  "url": presigned_placeholder("firmware/pump@1.4.0"),
                  "sha256": hashlib.sha256(IMAGE).hexdigest(),
                  "manifest": {"payload": "e30", "signature": "c2ln"}})


def publish_image(firmware: Any) -> None:
    firmware.add(Firmware(SemVer.parse("1.4.0"), "pump", len(IMAGE),
                          hashlib.sha256(IMAGE).hexdigest(), signature=b"sig", key_id="k"),
                 IMAGE)


def test_create_job_carries_the_rollout_model_and_round_trips_through_describe_job(
        aws: AwsSandbox) -> None:
    jobs, firmware, iot = jobs_over(aws)
    publish_image(firmware)
    job_id = f"{aws.stage}-ota-1"
    for thing in ("pump-1", "pump-2"):
        iot.create_thing(thingName=thing)
    calls = record_calls(iot, "iot")
    d = deployment()
    arn = jobs.create(Deployment(**{**_fields(d), "deployment_id": job_id}))
    assert arn.endswith(f"job/{job_id}")

    (sent,) = calls.named("CreateJob")
    assert sent["jobExecutionsRolloutConfig"] == {
        "maximumPerMinute": 50,
        "exponentialRate": {"baseRatePerMinute": 5, "incrementFactor": 2.0,
                            "rateIncreaseCriteria": {"numberOfSucceededThings": 10}}}
    assert sent["abortConfig"] == {"criteriaList": [{
        "failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 20.0,
        "minNumberOfExecutedThings": 10}]}
    assert sent["timeoutConfig"] == {"inProgressTimeoutInMinutes": 30}
    assert sent["jobExecutionsRetryConfig"] == {
        "criteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 2}]}
    assert sent["presignedUrlConfig"] == {"roleArn": ROLE, "expiresInSec": 3600}
    assert JobConfig.from_aws(sent) == CONFIG

    state = jobs.describe(job_id)
    assert state.status in ("IN_PROGRESS", "QUEUED")  # IoT Jobs says the first, moto the second
    assert state.targets == (f"arn:aws:iot:{aws.region}:{ACCOUNT}:thing/pump-1",
                             f"arn:aws:iot:{aws.region}:{ACCOUNT}:thing/pump-2")
    key = firmware.object_key("pump@1.4.0")
    assert state.document["url"] == (
        f"${{aws:iot:s3-presigned-url:https://s3.{aws.region}.amazonaws.com/"
        f"{firmware.bucket}/{key}}}")
    assert state.document["manifest"] == d.document["manifest"]  # signed part untouched
    # moto keeps only the timeout of the configuration (docs/aws.md, Gaps)
    assert state.config.in_progress_timeout_minutes == 30

    jobs.cancel(job_id, force=True, reason="canceled by erin (forced)")
    canceled = jobs.describe(job_id)
    assert canceled.status == "CANCELED" and canceled.force_canceled


def _fields(d: Deployment) -> dict[str, Any]:
    return {name: getattr(d, name) for name in Deployment.__dataclass_fields__}


def test_a_swapped_image_is_never_rolled_out(aws: AwsSandbox) -> None:
    jobs, firmware, iot = jobs_over(aws)
    publish_image(firmware)
    aws.client("s3").put_object(Bucket=firmware.bucket, Key=firmware.object_key("pump@1.4.0"),
                                Body=b"x" * len(IMAGE), ServerSideEncryption="AES256")
    calls = record_calls(iot, "iot")
    with pytest.raises(ValidationError, match="stored image SHA-256 is"):
        jobs.create(deployment())
    assert calls.named("CreateJob") == []


def test_describe_job_parses_the_full_configuration_and_executions_are_paged(
        aws: AwsSandbox) -> None:
    jobs, _firmware, iot = jobs_over(aws, page_size=2)
    job = {"jobId": "ota-1", "status": "IN_PROGRESS", "targets": ["arn:a"],
           "forceCanceled": False, **CONFIG.to_aws()}
    summary = {"status": "SUCCEEDED", "executionNumber": 1}
    with Stubber(iot) as stub:
        stub.add_response("describe_job", {"job": job}, {"jobId": "ota-1"})
        stub.add_response("get_job_document", {"document": json.dumps({"url": "u"})},
                          {"jobId": "ota-1"})
        stub.add_response("list_job_executions_for_job", {"executionSummaries": [
            {"thingArn": "arn:t1", "jobExecutionSummary": summary},
            {"thingArn": "arn:t2", "jobExecutionSummary": summary}], "nextToken": "p2"},
            {"jobId": "ota-1", "maxResults": 2})
        stub.add_response("list_job_executions_for_job", {"executionSummaries": [
            {"thingArn": "arn:t3", "jobExecutionSummary": {"status": "QUEUED",
                                                           "executionNumber": 1}}]},
            {"jobId": "ota-1", "maxResults": 2, "nextToken": "p2"})
        assert jobs.describe("ota-1").config == CONFIG
        assert [(e.thing_arn, e.status) for e in jobs.executions("ota-1")] == [
            ("arn:t1", "SUCCEEDED"), ("arn:t2", "SUCCEEDED"), ("arn:t3", "QUEUED")]
        stub.assert_no_pending_responses()


def test_a_job_beyond_the_target_limit_is_refused_with_the_fix(aws: AwsSandbox) -> None:
    jobs, _firmware, _iot = jobs_over(aws)
    big = Deployment(firmware_id="pump@1.4.0", targets=tuple(f"p-{i}" for i in range(101)))
    with pytest.raises(ValidationError, match=r"at most 100 .*thing group"):
        jobs.job_request(big)
