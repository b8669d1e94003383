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

This module only speaks to IoT Jobs' control plane (and, for execution
updates, its HTTPS data plane); the ``DeploymentService`` port with our own
deployment record is :mod:`plugins.aws.jobs.service`."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from core.errors import IllegalTransition, NotFound, ValidationError
from core.model.deployment import Deployment
from core.model.rollout import JobConfig
from core.protocol.ota import presigned_placeholder
from plugins.aws.firmware.s3 import DEFAULT_URL_EXPIRY_S, S3FirmwareRepository

MAX_TARGETS = 100  # CreateJob's limit on target ARNs; larger fleets target thing groups
MAX_PAGE = 250  # ListJobExecutionsForJob / ForThing: maxResults 1-250


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
    """One execution as IoT Jobs lists it (``JobExecutionSummary``); the
    listing carries no version number and no status details, which only
    DescribeJobExecution answers (``version_number`` 0 means "not read")."""

    thing_arn: str
    status: str
    execution_number: int
    job_id: str = ""
    queued_at: datetime | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    version_number: int = 0
    status_details: dict[str, str] = field(default_factory=dict)
    force_canceled: bool = False

    @property
    def thing_name(self) -> str:
        return thing_of(self.thing_arn)


def thing_of(thing_arn: str) -> str:
    """``arn:aws:iot:<region>:<account>:thing/<name>`` -> ``<name>``."""
    return thing_arn.rsplit("/", 1)[-1]


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _summary(item: dict[str, Any], job_id: str = "") -> JobExecution:
    summary = item.get("jobExecutionSummary", {})
    return JobExecution(
        thing_arn=str(item.get("thingArn", "")), status=str(summary.get("status", "")),
        execution_number=int(summary.get("executionNumber", 0)),
        job_id=str(item.get("jobId") or job_id), queued_at=summary.get("queuedAt"),
        started_at=summary.get("startedAt"), updated_at=summary.get("lastUpdatedAt"))


class IotJobs:
    def __init__(self, iot: Any, firmware: S3FirmwareRepository, *, region: str,
                 account_id: str | Callable[[], str], presign_role_arn: str = "",
                 presign_role_name: str = "", page_size: int = 100,
                 url_expiry_s: int = DEFAULT_URL_EXPIRY_S) -> None:
        """``account_id`` may be a function (STS GetCallerIdentity), asked once
        on first use, so building the backend sends no request; without
        ``presign_role_arn`` the role is ``presign_role_name`` in that account."""
        if not 60 <= url_expiry_s <= 3600:
            raise ValidationError(f"presigned URL expiry {url_expiry_s} s must be between "
                                  "60 and 3600 s (IoT Jobs' limits)")
        self._iot = iot
        self._firmware = firmware
        self._region = region
        self._account = account_id
        self._role_arn = presign_role_arn
        self._role_name = presign_role_name
        self._page_size = max(1, min(page_size, MAX_PAGE))
        self._url_expiry_s = url_expiry_s

    @property
    def firmware(self) -> S3FirmwareRepository:
        return self._firmware

    def account_id(self) -> str:
        if callable(self._account):
            self._account = str(self._account())
        return self._account

    def presign_role_arn(self) -> str:
        if not self._role_arn:
            if not self._role_name:
                raise ValidationError("IoT Jobs needs a role to presign firmware URLs with, "
                                      "and none is configured")
            self._role_arn = f"arn:aws:iam::{self.account_id()}:role/{self._role_name}"
        return self._role_arn

    def thing_arn(self, device_id: str) -> str:
        return f"arn:aws:iot:{self._region}:{self.account_id()}:thing/{device_id}"

    def image_url(self, firmware_id: str) -> str:
        key = self._firmware.object_key(firmware_id)
        return presigned_placeholder(
            f"https://s3.{self._region}.amazonaws.com/{self._firmware.bucket}/{key}")

    def job_request(self, deployment: Deployment, *, job_id: str = "",
                    targets: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The CreateJob parameters for ``deployment`` (no request is sent);
        ``job_id`` and ``targets`` name a retry job of it (a subset of its
        targets under another job id)."""
        devices = deployment.targets if targets is None else targets
        if not devices:
            raise ValidationError(f"deployment {deployment.deployment_id} has no targets")
        if len(devices) > MAX_TARGETS:
            raise ValidationError(
                f"deployment {deployment.deployment_id} names {len(devices)} "
                f"devices; a job takes at most {MAX_TARGETS} (target a thing group instead)")
        document = dict(deployment.document)
        document["url"] = self.image_url(deployment.firmware_id)
        request: dict[str, Any] = {
            "jobId": job_id or deployment.deployment_id,
            "targets": [self.thing_arn(d) for d in devices],
            "document": json.dumps(document, sort_keys=True),
            "targetSelection": "SNAPSHOT",
            "presignedUrlConfig": {"roleArn": self.presign_role_arn(),
                                   "expiresInSec": self._url_expiry_s},
            **deployment.config.to_aws(),
        }
        if deployment.description:
            request["description"] = deployment.description[:2028]
        return request

    def create(self, deployment: Deployment, *, job_id: str = "",
               targets: tuple[str, ...] | None = None) -> str:
        """CreateJob after the image was re-checked; returns the job's ARN."""
        self._firmware.verified_image(deployment.firmware_id)
        response = self._iot.create_job(**self.job_request(deployment, job_id=job_id,
                                                           targets=targets))
        return str(response["jobArn"])

    def describe(self, job_id: str) -> JobState:
        try:
            job = self._iot.describe_job(jobId=job_id)["job"]
        except ClientError as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                raise NotFound(f"no IoT job {job_id!r}") from None
            raise
        document = self._iot.get_job_document(jobId=job_id)["document"]
        return JobState(
            job_id=str(job["jobId"]), status=str(job["status"]),
            config=JobConfig.from_aws(job), targets=tuple(job.get("targets", ())),
            document=json.loads(document), force_canceled=bool(job.get("forceCanceled")),
            comment=str(job.get("comment") or ""))

    def status(self, job_id: str) -> tuple[str, bool]:
        """The job's status and whether it was force-canceled (DescribeJob only)."""
        try:
            job = self._iot.describe_job(jobId=job_id)["job"]
        except ClientError as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                raise NotFound(f"no IoT job {job_id!r}") from None
            raise
        return str(job["status"]), bool(job.get("forceCanceled"))

    def cancel_note(self, job_id: str) -> str:
        """Why a canceled job was canceled: its ``comment`` (CancelJob's, or
        the abort criterion IoT Jobs cancels it for), else its ``reasonCode``."""
        try:
            job = self._iot.describe_job(jobId=job_id)["job"]
        except ClientError as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                return ""
            raise
        return str(job.get("comment") or job.get("reasonCode") or "")

    def executions(self, job_id: str) -> builtins.list[JobExecution]:
        """ListJobExecutionsForJob, every page."""
        found: builtins.list[JobExecution] = []
        request: dict[str, Any] = {"jobId": job_id, "maxResults": self._page_size}
        while True:
            page = self._iot.list_job_executions_for_job(**request)
            found.extend(_summary(item, job_id) for item in page.get("executionSummaries", []))
            token = page.get("nextToken")
            if not token:
                return found
            request["nextToken"] = token

    def thing_executions(self, thing_name: str) -> builtins.list[JobExecution]:
        """ListJobExecutionsForThing, every page (a device's jobs of any stage)."""
        found: builtins.list[JobExecution] = []
        request: dict[str, Any] = {"thingName": thing_name, "maxResults": self._page_size}
        while True:
            try:
                page = self._iot.list_job_executions_for_thing(**request)
            except ClientError as exc:
                if _error_code(exc) == "ResourceNotFoundException":
                    return found  # no such thing: no executions
                raise
            for item in page.get("executionSummaries", []):
                execution = _summary(item)
                if not execution.thing_arn:
                    execution = JobExecution(self.thing_arn(thing_name), execution.status,
                                             execution.execution_number, execution.job_id,
                                             execution.queued_at, execution.started_at,
                                             execution.updated_at)
                found.append(execution)
            token = page.get("nextToken")
            if not token:
                return found
            request["nextToken"] = token

    def execution(self, job_id: str, thing_name: str) -> JobExecution | None:
        """DescribeJobExecution: the execution with its version and status
        details, or None when the job has none for the thing."""
        try:
            e = self._iot.describe_job_execution(jobId=job_id, thingName=thing_name)["execution"]
        except ClientError as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        details = (e.get("statusDetails") or {}).get("detailsMap") or {}
        return JobExecution(
            thing_arn=str(e.get("thingArn") or self.thing_arn(thing_name)),
            status=str(e["status"]), execution_number=int(e.get("executionNumber", 0)),
            job_id=job_id, queued_at=e.get("queuedAt"), started_at=e.get("startedAt"),
            updated_at=e.get("lastUpdatedAt"), version_number=int(e.get("versionNumber", 0)),
            status_details={str(k): str(v) for k, v in details.items()},
            force_canceled=bool(e.get("forceCanceled")))

    def cancel(self, job_id: str, *, force: bool = False, reason: str = "") -> None:
        """``force`` also cancels executions already IN_PROGRESS on devices."""
        request: dict[str, Any] = {"jobId": job_id, "force": force}
        if reason:
            request["comment"] = reason[:2028]
        self._iot.cancel_job(**request)

    def cancel_execution(self, job_id: str, thing_name: str, *, force: bool,
                         expected_version: int | None = None) -> None:
        """CancelJobExecution: an IN_PROGRESS execution only with ``force``
        (the device may be mid-flash); a stale ``expected_version`` is
        IoT Jobs' VersionConflict, raised as IllegalTransition."""
        request: dict[str, Any] = {"jobId": job_id, "thingName": thing_name, "force": force}
        if expected_version is not None:
            request["expectedVersion"] = expected_version
        try:
            self._iot.cancel_job_execution(**request)
        except ClientError as exc:
            code = _error_code(exc)
            if code == "ResourceNotFoundException":
                raise NotFound(f"device {thing_name!r} has no execution of job {job_id!r}") \
                    from None
            if code in ("InvalidStateTransitionException", "VersionConflictException"):
                raise IllegalTransition(
                    f"job {job_id} on {thing_name}: IoT Jobs refused the cancellation "
                    f"({code}: {exc.response.get('Error', {}).get('Message', '')})") from None
            raise
