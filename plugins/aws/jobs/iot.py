"""Firmware deployments as AWS IoT Jobs: the request CreateJob gets for one of
our deployments, and its status and executions read back.

The job document is the deployment's own (the signed manifest included); only
its ``url`` becomes ``${aws:iot:s3-presigned-url:https://s3...}`` naming the
image in the firmware bucket, which IoT Jobs replaces by a presigned GET
(``presignedUrlConfig``: the role it presigns with and how long the URL lives)
when it hands the document to a device. The manifest signs the image's hash,
not the URL, so rewriting the URL leaves it valid. The rollout, abort, timeout
and retry settings are our rollout model's AWS shape (core.model.rollout
``JobConfig.to_aws``), so the same deployment behaves alike on the local hub.

Before a job is created the stored image is re-hashed against its manifest
(``S3FirmwareRepository.verified_image``): a swapped object is never rolled out.

Not yet the ``DeploymentService`` port: pause/resume, requeue and the per-device
execution updates the local hub's jobs host drives are IoT Jobs' own device
data plane on AWS (docs/aws.md, Gaps)."""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from core.errors import NotFound, ValidationError
from core.model.deployment import Deployment
from core.model.rollout import JobConfig
from core.protocol.ota import presigned_placeholder
from plugins.aws.firmware.s3 import DEFAULT_URL_EXPIRY_S, S3FirmwareRepository

MAX_TARGETS = 100  # CreateJob's limit on target ARNs; larger fleets target thing groups


@dataclass(frozen=True, slots=True)
class JobState:
    job_id: str
    status: str  # IN_PROGRESS, CANCELED, DELETION_IN_PROGRESS, COMPLETED, SCHEDULED
    config: JobConfig
    targets: tuple[str, ...]
    document: dict[str, Any]
    force_canceled: bool
    comment: str


@dataclass(frozen=True, slots=True)
class JobExecution:
    thing_arn: str
    status: str
    execution_number: int


class IotJobs:
    def __init__(self, iot: Any, firmware: S3FirmwareRepository, *, region: str,
                 account_id: str, presign_role_arn: str, page_size: int = 100,
                 url_expiry_s: int = DEFAULT_URL_EXPIRY_S) -> None:
        if not 60 <= url_expiry_s <= 3600:
            raise ValidationError(f"presigned URL expiry {url_expiry_s} s must be between "
                                  "60 and 3600 s (IoT Jobs' limits)")
        self._iot = iot
        self._firmware = firmware
        self._region = region
        self._account_id = account_id
        self._role_arn = presign_role_arn
        self._page_size = page_size
        self._url_expiry_s = url_expiry_s

    def thing_arn(self, device_id: str) -> str:
        return f"arn:aws:iot:{self._region}:{self._account_id}:thing/{device_id}"

    def image_url(self, firmware_id: str) -> str:
        key = self._firmware.object_key(firmware_id)
        return presigned_placeholder(
            f"https://s3.{self._region}.amazonaws.com/{self._firmware.bucket}/{key}")

    def job_request(self, deployment: Deployment) -> dict[str, Any]:
        """The CreateJob parameters for ``deployment`` (no request is sent)."""
        if not deployment.targets:
            raise ValidationError(f"deployment {deployment.deployment_id} has no targets")
        if len(deployment.targets) > MAX_TARGETS:
            raise ValidationError(
                f"deployment {deployment.deployment_id} names {len(deployment.targets)} "
                f"devices; a job takes at most {MAX_TARGETS} (target a thing group instead)")
        document = dict(deployment.document)
        document["url"] = self.image_url(deployment.firmware_id)
        request: dict[str, Any] = {
            "jobId": deployment.deployment_id,
            "targets": [self.thing_arn(d) for d in deployment.targets],
            "document": json.dumps(document, sort_keys=True),
            "targetSelection": "SNAPSHOT",
            "presignedUrlConfig": {"roleArn": self._role_arn,
                                   "expiresInSec": self._url_expiry_s},
            **deployment.config.to_aws(),
        }
        if deployment.description:
            request["description"] = deployment.description[:2028]
        return request

    def create(self, deployment: Deployment) -> str:
        """CreateJob after the image was re-checked; returns the job's ARN."""
        self._firmware.verified_image(deployment.firmware_id)
        response = self._iot.create_job(**self.job_request(deployment))
        return str(response["jobArn"])

    def describe(self, job_id: str) -> JobState:
        try:
            job = self._iot.describe_job(jobId=job_id)["job"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise NotFound(f"no IoT job {job_id!r}") from None
            raise
        document = self._iot.get_job_document(jobId=job_id)["document"]
        return JobState(
            job_id=str(job["jobId"]), status=str(job["status"]),
            config=JobConfig.from_aws(job), targets=tuple(job.get("targets", ())),
            document=json.loads(document), force_canceled=bool(job.get("forceCanceled")),
            comment=str(job.get("comment") or ""))

    def executions(self, job_id: str) -> builtins.list[JobExecution]:
        """ListJobExecutionsForJob, every page."""
        found: builtins.list[JobExecution] = []
        request: dict[str, Any] = {"jobId": job_id, "maxResults": self._page_size}
        while True:
            page = self._iot.list_job_executions_for_job(**request)
            for item in page.get("executionSummaries", []):
                summary = item.get("jobExecutionSummary", {})
                found.append(JobExecution(str(item["thingArn"]), str(summary.get("status", "")),
                                          int(summary.get("executionNumber", 0))))
            token = page.get("nextToken")
            if not token:
                return found
            request["nextToken"] = token

    def cancel(self, job_id: str, *, force: bool = False, reason: str = "") -> None:
        """``force`` also cancels executions already IN_PROGRESS on devices."""
        request: dict[str, Any] = {"jobId": job_id, "force": force}
        if reason:
            request["comment"] = reason[:2028]
        self._iot.cancel_job(**request)
