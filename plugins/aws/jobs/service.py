"""The ``DeploymentService`` port on AWS: our deployment record in DynamoDB
(:mod:`plugins.aws.jobs.records`), the rollout itself in AWS IoT Jobs.

What each method means here, where IoT Jobs differs from the local hub's jobs
service (docs/aws.md, "Deployments on AWS IoT Jobs"):

- ``create``: the record first (conditional Put, so an id is used once), then
  CreateJob after the image was re-hashed against its manifest; if the job
  cannot be created the record is deleted again, so no deployment exists that
  IoT Jobs does not run.
- status, ``executions`` and ``counts`` come from IoT Jobs (DescribeJob,
  ListJobExecutionsForJob page by page) each time they are asked for, until
  the deployment is completed or canceled; the record keeps the last status.
- ``release`` does nothing: IoT Jobs notifies devices itself, at the pace of
  the job's ``jobExecutionsRolloutConfig``; no rollout engine runs on AWS.
- ``set_status`` (pause, resume) is refused: IoT Jobs cannot pause a job.
- ``requeue`` (retry the failed devices) creates a retry job for them with
  the same document and configuration; an execution's ``execution_number``
  counts its attempts across the deployment's jobs.
- ``update_execution``: CANCELED is CancelJobExecution; what devices report
  (IN_PROGRESS, SUCCEEDED, FAILED, REJECTED) is the Jobs data plane's
  UpdateJobExecution; TIMED_OUT and REMOVED are IoT Jobs' own verdicts and
  are refused.
"""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from core.errors import IllegalTransition, NotFound, ValidationError
from core.model import Deployment, DeploymentStatus, Execution, ExecutionStatus
from core.model.timeutil import utcnow
from core.ports.deployments import DeploymentService
from plugins.aws.dynamodb.codec import iso, put_json
from plugins.aws.dynamodb.paging import batch_get, query_items
from plugins.aws.dynamodb.tables import DEPLOYMENTS_BY_CREATED, DEPLOYMENTS_PARTITION
from plugins.aws.jobs.iot import IotJobs, JobExecution
from plugins.aws.jobs.records import Attempt, DeploymentRecord, from_item, to_item
from plugins.aws.settings import AwsSettings

PENDING = "PENDING"
RETRY_SUFFIX = "-retry-"
PAUSE_REFUSED = ("pausing is not available on AWS IoT Jobs; cancel instead "
                 "(and create a new deployment to go on later)")
RESUME_REFUSED = ("resuming is not available on AWS IoT Jobs: a job there is never "
                  "paused, it runs until it completes or is canceled")
_RETRIABLE = frozenset({ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT,
                        ExecutionStatus.REJECTED})
_MAX_KEPT_DETAILS = 10_000
_DEVICE_REPORTED = frozenset({ExecutionStatus.IN_PROGRESS, ExecutionStatus.SUCCEEDED,
                              ExecutionStatus.FAILED, ExecutionStatus.REJECTED})
# IoT Jobs' job status -> ours; moto answers QUEUED for a job IoT Jobs calls IN_PROGRESS.
_JOB_STATUS = {"IN_PROGRESS": DeploymentStatus.IN_PROGRESS,
               "QUEUED": DeploymentStatus.IN_PROGRESS,
               "SCHEDULED": DeploymentStatus.SCHEDULED,
               "COMPLETED": DeploymentStatus.COMPLETED,
               "CANCELED": DeploymentStatus.CANCELED,
               "DELETION_IN_PROGRESS": DeploymentStatus.DELETION_IN_PROGRESS}


def deployment_of_job(job_id: str) -> str:
    """The deployment a job belongs to (a retry job is ``{id}-retry-{n}``)."""
    head, sep, tail = job_id.rpartition(RETRY_SUFFIX)
    return head if sep and tail.isdigit() else job_id


class IotJobsDeploymentService(DeploymentService):
    can_pause = False  # IoT Jobs has no pause: set_status refuses with PAUSE_REFUSED

    def __init__(self, client: Any, settings: AwsSettings, jobs: IotJobs, *,
                 jobs_data: Callable[[], Any] | None = None,
                 organization_of: Callable[[str], str | None] | None = None) -> None:
        """``client`` is DynamoDB's; ``jobs_data`` makes the Jobs data-plane
        client (``iot-jobs-data``) when an execution update needs it;
        ``organization_of`` names a device's organization for the record."""
        self._db = client
        self._table = settings.table("deployments")
        self._page = settings.page_size
        self._jobs = jobs
        self._jobs_data = jobs_data
        self._organization_of = organization_of
        # (job, device, execution number) -> what a device said when it failed
        self._failure_details: dict[tuple[str, str, int], dict[str, str]] = {}

    # ------------------------------------------------------------ records
    def _record(self, deployment_id: str) -> DeploymentRecord:
        item = self._db.get_item(TableName=self._table, ConsistentRead=True,
                                 Key={"deployment_id": {"S": deployment_id}}).get("Item")
        if item is None:
            raise NotFound(f"deployment {deployment_id!r} does not exist")
        return from_item(item)

    def _set(self, deployment_id: str, values: Mapping[str, dict[str, Any]],
             condition: str = "attribute_exists(deployment_id)",
             condition_values: Mapping[str, dict[str, Any]] | None = None) -> None:
        names = {f"#a{i}": name for i, name in enumerate(values)}
        request: dict[str, Any] = {
            "TableName": self._table, "Key": {"deployment_id": {"S": deployment_id}},
            "UpdateExpression": "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {
                **{f":v{i}": value for i, value in enumerate(values.values())},
                **(condition_values or {})},
            "ConditionExpression": condition}
        self._db.update_item(**request)

    def _live(self, record: DeploymentRecord) -> DeploymentRecord:
        return self._with_jobs(record)[0]

    def _with_jobs(self, record: DeploymentRecord
                   ) -> tuple[DeploymentRecord, builtins.list[tuple[str, bool]]]:
        """The record with IoT Jobs' current status (stored when it changed),
        and each of its jobs' status and force-cancel flag. A completed or
        canceled deployment is not asked about again: its jobs are taken to be
        in its final state."""
        if record.is_final:
            final = _aws_status(record.deployment.status)
            return record, [(final, record.force_canceled)] * len(record.attempts)
        states = [self._jobs.status(a.job_id) for a in record.attempts]
        status = _combined(s for s, _forced in states)
        forced = any(f for _s, f in states)
        if status is record.deployment.status and forced == record.force_canceled:
            return record, states
        values: dict[str, dict[str, Any]] = {"status": {"S": status.value},
                                             "force_canceled": {"BOOL": forced},
                                             "updated_at": {"S": iso(utcnow())}}
        moved = replace(record.with_status(status), force_canceled=forced)
        if status is DeploymentStatus.CANCELED and not record.deployment.reason:
            # canceled by IoT Jobs itself (the abort configuration) or by a
            # CancelJob outside this service: keep the job's own reason
            note = next((n for a, (s, _f) in zip(record.attempts, states, strict=True)
                         if s == "CANCELED" and (n := self._jobs.cancel_note(a.job_id))), "")
            if note:
                values["reason"] = {"S": note}
                moved = replace(moved, deployment=replace(moved.deployment, reason=note))
        self._set(record.deployment_id, values)
        return moved, states

    # ------------------------------------------------------------ port: reading
    def create(self, deployment: Deployment) -> Deployment:
        d = replace(deployment, status=DeploymentStatus.SCHEDULED)
        self._jobs.job_request(d)  # refuses what CreateJob would (too many targets)
        record = DeploymentRecord(d, (Attempt(d.deployment_id, d.targets),),
                                  self._organizations(d.targets))
        try:
            self._db.put_item(TableName=self._table, Item=to_item(record),
                              ConditionExpression="attribute_not_exists(deployment_id)")
        except self._db.exceptions.ConditionalCheckFailedException:
            raise ValidationError(f"deployment {d.deployment_id} already exists") from None
        try:
            self._jobs.create(d)
        except BaseException:
            # No record of a deployment IoT Jobs does not run (a swapped image,
            # a refused request): the person sees the error and nothing else.
            self._db.delete_item(TableName=self._table,
                                 Key={"deployment_id": {"S": d.deployment_id}})
            raise
        return self.get(d.deployment_id)

    def _organizations(self, targets: tuple[str, ...]) -> tuple[str, ...]:
        if self._organization_of is None:
            return ()
        return tuple(sorted({o for o in map(self._organization_of, targets) if o}))

    def get(self, deployment_id: str) -> Deployment:
        return self._live(self._record(deployment_id)).deployment

    def list(self) -> builtins.list[Deployment]:
        """Newest first: one Query of ``CreatedIndex``, page by page."""
        items = query_items(self._db, self._page, TableName=self._table,
                            IndexName=DEPLOYMENTS_BY_CREATED,
                            KeyConditionExpression="#k = :k",
                            ExpressionAttributeNames={"#k": "kind"},
                            ExpressionAttributeValues={":k": {"S": DEPLOYMENTS_PARTITION}},
                            ScanIndexForward=False)
        return [self._live(from_item(item)).deployment for item in items]

    def executions(self, deployment_id: str) -> builtins.list[Execution]:
        record, merged = self._merged(self._record(deployment_id))
        return sorted((self._explained(record, e) for e in merged.values()),
                      key=lambda e: e.device_id)

    def _explained(self, record: DeploymentRecord, e: Execution) -> Execution:
        """A failed, rejected or timed-out execution with the device's own
        words (reason, message), which ListJobExecutionsForJob leaves out:
        one DescribeJobExecution per such execution, kept, as it cannot change."""
        if e.status not in _RETRIABLE or e.status_details:
            return e
        job_id = [a.job_id for a in record.attempts if e.device_id in a.devices][-1]
        key = (job_id, e.device_id, e.execution_number)
        details = self._failure_details.get(key)
        if details is None:
            found = self._jobs.execution(job_id, e.device_id)
            details = dict(found.status_details) if found is not None else {}
            if len(self._failure_details) >= _MAX_KEPT_DETAILS:
                self._failure_details.clear()
            self._failure_details[key] = details
        return replace(e, status_details=dict(details)) if details else e

    def _merged(self, record: DeploymentRecord
                ) -> tuple[DeploymentRecord, dict[str, Execution]]:
        """The live record, and each target's newest attempt across the
        deployment's jobs (a retry job's execution replaces the first job's
        for its devices). One DescribeJob per running job, then its listing."""
        record, states = self._with_jobs(record)
        found: dict[str, Execution] = {}
        for attempt, (status, forced) in zip(record.attempts, states, strict=True):
            for e in self._jobs.executions(attempt.job_id):
                before = found.get(e.thing_name)
                found[e.thing_name] = _execution(record, e, status, forced, before)
        return record, found

    def execution(self, deployment_id: str, device_id: str) -> Execution:
        record = self._live(self._record(deployment_id))
        tried = [a for a in record.attempts if device_id in a.devices]
        for index in range(len(tried) - 1, -1, -1):
            found = self._jobs.execution(tried[index].job_id, device_id)
            if found is not None:
                return _execution(record, found, _aws_status(record.deployment.status),
                                  record.force_canceled, None, attempts_before=index)
        raise NotFound(f"device {device_id!r} has no execution of job {deployment_id!r}")

    def counts(self, deployment_id: str) -> dict[str, int]:
        """Once the deployment has ended and every execution has finished, the
        counts cannot change: they are stored with the record, and later looks
        (the deployments list, every poll) read no job."""
        stored = self._record(deployment_id)
        if stored.final_counts is not None:
            return dict(stored.final_counts)
        record, merged = self._merged(stored)
        counts = dict(Counter(e.status.value for e in merged.values()))
        unreleased = len(record.deployment.targets) - len(merged)
        if record.deployment.status is DeploymentStatus.CANCELED:
            counts[ExecutionStatus.CANCELED.value] = (
                counts.get(ExecutionStatus.CANCELED.value, 0) + unreleased)
            counts[PENDING] = 0
        else:
            counts[PENDING] = unreleased
        if record.is_final and all(e.status.is_terminal for e in merged.values()):
            values: dict[str, dict[str, Any]] = {}
            put_json(values, "final_counts", counts)
            self._set(deployment_id, values)
        return counts

    def for_device(self, device_id: str, statuses: Iterable[ExecutionStatus] | None = None
                   ) -> builtins.list[Execution]:
        """ListJobExecutionsForThing, kept to this stage's deployments (the thing
        registry is the account's, shared by every stage)."""
        wanted = None if statuses is None else frozenset(statuses)
        by_deployment: dict[str, builtins.list[JobExecution]] = {}
        for e in self._jobs.thing_executions(device_id):
            by_deployment.setdefault(deployment_of_job(e.job_id), []).append(e)
        if not by_deployment:
            return []
        items = batch_get(self._db, self._table,
                          [{"deployment_id": {"S": i}} for i in sorted(by_deployment)])
        found: builtins.list[Execution] = []
        for item in items:
            record = from_item(item)
            jobs = [a.job_id for a in record.attempts if device_id in a.devices]
            mine = [e for e in by_deployment[record.deployment_id] if e.job_id in jobs]
            if not mine:
                continue
            newest = max(mine, key=lambda e: jobs.index(e.job_id))
            execution = _execution(record, newest, _aws_status(record.deployment.status),
                                   record.force_canceled, None,
                                   attempts_before=jobs.index(newest.job_id))
            if wanted is None or execution.status in wanted:
                found.append(execution)
        return sorted(found, key=lambda e: (e.queued_at, e.deployment_id))

    # ------------------------------------------------------------ port: changes
    def release(self, deployment_id: str, device_ids: Iterable[str]) -> builtins.list[Execution]:
        """Nothing to do: IoT Jobs notifies the targets itself, as fast as the
        job's rollout configuration allows. Returns no fresh executions; the
        checks are the local service's, so a caller's mistake reads the same."""
        record = self._live(self._record(deployment_id))
        status = record.deployment.status
        if status not in (DeploymentStatus.SCHEDULED, DeploymentStatus.IN_PROGRESS):
            raise IllegalTransition(f"deployment {deployment_id} is {status.value}; devices "
                                    "are released only while it runs")
        strangers = [d for d in dict.fromkeys(device_ids) if d not in record.deployment.targets]
        if strangers:
            raise ValidationError(
                f"{', '.join(strangers[:5])} not a target of deployment {deployment_id}")
        return []

    def update_execution(self, deployment_id: str, device_id: str, status: ExecutionStatus, *,
                         status_details: dict[str, str] | None = None,
                         expected_version: int | None = None) -> Execution:
        current = self.execution(deployment_id, device_id)
        current.transition(status, status_details=status_details,
                           expected_version=expected_version)  # the same rules, checked first
        job_id = self._job_of(deployment_id, device_id)
        if status is ExecutionStatus.CANCELED:
            self._jobs.cancel_execution(job_id, device_id,
                                        force=current.status is ExecutionStatus.IN_PROGRESS,
                                        expected_version=expected_version)
            return self.execution(deployment_id, device_id)
        if status not in _DEVICE_REPORTED:
            raise IllegalTransition(
                f"job {deployment_id} on {device_id}: {status.value} is set by AWS IoT Jobs "
                "itself (TIMED_OUT by the job's timeout, REMOVED when the thing leaves the "
                "job's targets); it cannot be reported")
        return self._report(current, job_id, status, status_details, expected_version)

    def _job_of(self, deployment_id: str, device_id: str) -> str:
        record = self._record(deployment_id)
        return [a.job_id for a in record.attempts if device_id in a.devices][-1]

    def _report(self, current: Execution, job_id: str, status: ExecutionStatus,
                status_details: dict[str, str] | None, expected_version: int | None
                ) -> Execution:
        """UpdateJobExecution on the Jobs data plane, as the device would send it."""
        if self._jobs_data is None:
            raise IllegalTransition("execution updates need the IoT Jobs data plane, which "
                                    "this backend was built without")
        request: dict[str, Any] = {"jobId": job_id, "thingName": current.device_id,
                                   "status": status.value, "includeJobExecutionState": True}
        if status_details is not None:
            request["statusDetails"] = dict(status_details)
        if expected_version is not None:
            request["expectedVersion"] = expected_version
        try:
            answer = self._jobs_data().update_job_execution(**request)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("InvalidStateTransitionException", "VersionConflictException"):
                raise IllegalTransition(
                    f"job {current.deployment_id} on {current.device_id}: IoT Jobs refused "
                    f"{status.value} ({code})") from None
            raise
        state = answer.get("executionState") or {}
        moved = current.transition(status, status_details=status_details)
        return replace(moved, version_number=int(state.get("versionNumber",
                                                            moved.version_number)),
                       status_details=dict(state.get("statusDetails") or moved.status_details))

    def requeue(self, deployment_id: str, device_ids: Iterable[str]) -> builtins.list[Execution]:
        """A retry job ``{id}-retry-{n}`` for the wanted devices whose newest
        attempt failed, timed out or was rejected (IoT Jobs cannot requeue an
        execution of a job). The attempt is recorded first, conditional on the
        attempts seen, so two people retrying at once make one job."""
        record, merged = self._merged(self._record(deployment_id))
        if record.deployment.status is DeploymentStatus.CANCELED:
            raise IllegalTransition(f"deployment {deployment_id} was canceled; create a new one")
        wanted = [d for d in dict.fromkeys(device_ids)
                  if d in merged and merged[d].status in _RETRIABLE]
        if not wanted:
            return []
        job_id = f"{deployment_id}{RETRY_SUFFIX}{len(record.attempts)}"
        attempts = (*record.attempts, Attempt(job_id, tuple(wanted)))
        now = utcnow()
        update: dict[str, dict[str, Any]] = {
            "attempt_count": {"N": str(len(attempts))},
            "status": {"S": DeploymentStatus.IN_PROGRESS.value},
            "final_counts": {"S": "null"},  # a retry job runs: the counts move again
            "updated_at": {"S": iso(now)}}
        put_json(update, "attempts", [{"job_id": a.job_id, "devices": list(a.devices)}
                                      for a in attempts])
        try:
            self._set(deployment_id, update, "attempt_count = :seen",
                      {":seen": {"N": str(len(record.attempts))}})
        except self._db.exceptions.ConditionalCheckFailedException:
            raise IllegalTransition(f"deployment {deployment_id} was retried by someone else "
                                    "meanwhile; reload it") from None
        try:
            self._jobs.create(record.deployment, job_id=job_id, targets=tuple(wanted))
        except BaseException:
            undo: dict[str, dict[str, Any]] = {
                "attempt_count": {"N": str(len(record.attempts))},
                "status": {"S": record.deployment.status.value}}
            put_json(undo, "final_counts", record.final_counts)
            put_json(undo, "attempts", [{"job_id": a.job_id, "devices": list(a.devices)}
                                        for a in record.attempts])
            self._set(deployment_id, undo)
            raise
        return [Execution(deployment_id, d, ExecutionStatus.QUEUED,
                          execution_number=merged[d].execution_number + 1,
                          queued_at=now, updated_at=now) for d in wanted]

    def set_status(self, deployment_id: str, status: DeploymentStatus, *, reason: str = ""
                   ) -> Deployment:
        """Refused: IoT Jobs has no pause (UpdateJob changes a job's rate, never
        to zero). The error is what the console and the API show."""
        if status not in (DeploymentStatus.PAUSED, DeploymentStatus.IN_PROGRESS):
            raise ValidationError(
                f"a deployment can be set to PAUSED or IN_PROGRESS here, not {status.value}; "
                "cancel it to stop it for good")
        self._record(deployment_id)  # NotFound first, as everywhere
        raise IllegalTransition(PAUSE_REFUSED if status is DeploymentStatus.PAUSED
                                else RESUME_REFUSED)

    def cancel(self, deployment_id: str, *, force: bool = False, reason: str = "") -> Deployment:
        """CancelJob on each of the deployment's jobs still running: queued
        executions are canceled, in-progress ones only with ``force`` (the
        device may be mid-flash). A canceled deployment can be canceled again
        with ``force`` to stop what is still in progress."""
        record = self._live(self._record(deployment_id))
        status = record.deployment.status
        if status is DeploymentStatus.COMPLETED:
            raise IllegalTransition(f"deployment {deployment_id} has completed; nothing to cancel")
        if status is DeploymentStatus.CANCELED and (not force or record.force_canceled):
            return record.deployment
        for attempt in record.attempts:
            job_status, forced = self._jobs.status(attempt.job_id)
            if job_status == "COMPLETED" or (job_status == "CANCELED" and (forced or not force)):
                continue
            self._jobs.cancel(attempt.job_id, force=force, reason=reason)
        values: dict[str, dict[str, Any]] = {"status": {"S": DeploymentStatus.CANCELED.value},
                                             "force_canceled": {"BOOL": force},
                                             "updated_at": {"S": iso(utcnow())}}
        if reason:
            values["reason"] = {"S": reason}
        self._set(deployment_id, values)
        return self._record(deployment_id).deployment

    def save_rollout_state(self, deployment_id: str, state: Mapping[str, Any]) -> None:
        values: dict[str, dict[str, Any]] = {}
        put_json(values, "rollout_state", dict(state))
        try:
            self._set(deployment_id, values)
        except self._db.exceptions.ConditionalCheckFailedException:
            raise NotFound(f"deployment {deployment_id!r} does not exist") from None


def _combined(statuses: Iterable[str]) -> DeploymentStatus:
    """The deployment's status from its jobs': canceled if any was (by a person
    or by the abort configuration), running while any runs, else completed."""
    ours = [_JOB_STATUS.get(s, DeploymentStatus.IN_PROGRESS) for s in statuses]
    for status in (DeploymentStatus.CANCELED, DeploymentStatus.DELETION_IN_PROGRESS,
                   DeploymentStatus.IN_PROGRESS, DeploymentStatus.SCHEDULED):
        if status in ours:
            return status
    return DeploymentStatus.COMPLETED


def _aws_status(status: DeploymentStatus) -> str:
    return "CANCELED" if status is DeploymentStatus.CANCELED else status.value


def _execution(record: DeploymentRecord, e: JobExecution, job_status: str, forced: bool,
               before: Execution | None, *, attempts_before: int = 0) -> Execution:
    """Core's Execution for IoT Jobs' one. A canceled job's queued executions
    (and, force-canceled, its in-progress ones) are canceled: IoT Jobs cancels
    them itself, moments after CancelJob answers."""
    status = ExecutionStatus.parse(e.status)
    if job_status == "CANCELED" and (status is ExecutionStatus.QUEUED or (
            forced and status is ExecutionStatus.IN_PROGRESS)):
        status = ExecutionStatus.CANCELED
    number = e.execution_number + attempts_before
    if before is not None:
        number = before.execution_number + 1
    queued = e.queued_at or record.deployment.created_at
    return Execution(
        deployment_id=record.deployment_id, device_id=e.thing_name, status=status,
        version_number=e.version_number, status_details=dict(e.status_details),
        execution_number=number, queued_at=queued, started_at=e.started_at,
        updated_at=e.updated_at or queued)


def presign_role_name(settings: AwsSettings) -> str:
    """The IAM role IoT Jobs presigns firmware URLs with (s3:GetObject on the
    firmware bucket only); the Serverless stack declares it under this name."""
    return f"iot-firmware-presign-{settings.stage}"


def deployments_over(clients: Any, settings: AwsSettings, firmware: Any,
                     organization_of: Callable[[str], str | None] | None = None
                     ) -> IotJobsDeploymentService:
    """The port over a backend's clients (``plugins.aws.clients.AwsClients``).
    Nothing is sent until a deployment is used: the account id (for thing and
    role ARNs) is asked of STS once, on first use."""
    jobs = IotJobs(clients.client("iot"), firmware, region=settings.region,
                   account_id=lambda: str(clients.client("sts").get_caller_identity()["Account"]),
                   presign_role_name=presign_role_name(settings),
                   page_size=settings.page_size)
    return IotJobsDeploymentService(clients.dynamodb, settings, jobs,
                                    jobs_data=lambda: clients.client("iot-jobs-data"),
                                    organization_of=organization_of)
