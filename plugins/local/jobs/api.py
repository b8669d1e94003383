"""The AWS IoT Jobs device API as pure functions: parse requests, judge updates,
build the response bodies. No MQTT, no store: ``host.py`` does the I/O.

Shapes follow the Jobs device MQTT API (and awsiotsdk's ``awsiot/iotjobs.py``):
JobExecutionData, JobExecutionState, JobExecutionSummary, the ErrorResponse,
and every timestamp in epoch *seconds*.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.model import LEGAL_TRANSITIONS, Execution, ExecutionStatus

NEXT = "$next"
PENDING = (ExecutionStatus.QUEUED, ExecutionStatus.IN_PROGRESS)
# What a device may ask for on {jobId}/update; the rest are the service's moves.
DEVICE_STATUSES = (
    ExecutionStatus.IN_PROGRESS,
    ExecutionStatus.SUCCEEDED,
    ExecutionStatus.FAILED,
    ExecutionStatus.REJECTED,
)
JOB_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
DETAIL_KEY = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
MAX_DETAIL_VALUE = 1024
MAX_DETAILS = 10
MAX_CLIENT_TOKEN = 64
MAX_STEP_TIMEOUT_MIN = 10080  # 7 days, IoT Jobs' limit
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ErrorCode(enum.StrEnum):
    INVALID_TOPIC = "InvalidTopic"
    INVALID_JSON = "InvalidJson"
    INVALID_REQUEST = "InvalidRequest"
    INVALID_STATE_TRANSITION = "InvalidStateTransition"
    RESOURCE_NOT_FOUND = "ResourceNotFound"
    VERSION_MISMATCH = "VersionMismatch"
    INTERNAL_ERROR = "InternalError"
    REQUEST_THROTTLED = "RequestThrottled"
    TERMINAL_STATE_REACHED = "TerminalStateReached"


class JobsError(Exception):
    """A request the service rejects; becomes the ErrorResponse on ``.../rejected``."""

    def __init__(self, code: ErrorCode, message: str,
                 execution: Execution | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.execution = execution  # sent back as executionState when set


class Api(enum.StrEnum):
    GET_PENDING = "GetPendingJobExecutions"
    START_NEXT = "StartNextPendingJobExecution"
    DESCRIBE = "DescribeJobExecution"
    UPDATE = "UpdateJobExecution"


@dataclass(frozen=True, slots=True)
class Route:
    api: Api
    job_id: str = ""


def route(tail: Sequence[str]) -> Route | None:
    """Map the part of the topic after ``$aws/things/{thing}/jobs/`` to an API.

    None means "not a request": our own replies and notifications (which come
    back on the hub's wildcard subscription). Raises InvalidTopic for a topic
    in the jobs namespace that maps to no API."""
    if not tail or tail[-1] in ("accepted", "rejected") or tail in (("notify",),
                                                                    ("notify-next",)):
        return None
    if tail == ("get",):
        return Route(Api.GET_PENDING)
    if tail == ("start-next",):
        return Route(Api.START_NEXT)
    if len(tail) == 2 and tail[1] in ("get", "update"):
        job_id = tail[0]
        if tail[1] == "get" and job_id == NEXT:
            return Route(Api.DESCRIBE, NEXT)
        if JOB_ID.fullmatch(job_id):
            return Route(Api.DESCRIBE if tail[1] == "get" else Api.UPDATE, job_id)
        raise JobsError(ErrorCode.INVALID_TOPIC,
                        f"job id {job_id!r} in the topic is not 1-64 characters of "
                        "a-z A-Z 0-9 _ -" + (" ($next only works with get)"
                                             if job_id == NEXT else ""))
    raise JobsError(ErrorCode.INVALID_TOPIC,
                    f"jobs/{'/'.join(tail)} is not a Jobs API topic; use get, start-next, "
                    "{jobId}/get or {jobId}/update")


# ------------------------------------------------------------------ requests
@dataclass(frozen=True, slots=True)
class DescribeRequest:
    client_token: str | None = None
    execution_number: int | None = None
    include_job_document: bool = True  # "unless set to false"


@dataclass(frozen=True, slots=True)
class StartNextRequest:
    client_token: str | None = None
    status_details: dict[str, str] | None = None
    step_timeout_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    status: ExecutionStatus
    client_token: str | None = None
    status_details: dict[str, str] | None = None
    expected_version: int | None = None
    execution_number: int | None = None
    include_job_execution_state: bool = False
    include_job_document: bool = False
    step_timeout_minutes: int | None = None


def client_token_of(request: Mapping[str, Any] | None) -> str | None:
    """The token to echo even on a rejection, when the request carried a usable one."""
    token = (request or {}).get("clientToken")
    return token if isinstance(token, str) and len(token) <= MAX_CLIENT_TOKEN else None


def _invalid(message: str) -> JobsError:
    return JobsError(ErrorCode.INVALID_REQUEST, message)


def _token(request: Mapping[str, Any]) -> str | None:
    token = request.get("clientToken")
    if token is None:
        return None
    if not isinstance(token, str) or not 1 <= len(token) <= MAX_CLIENT_TOKEN:
        raise _invalid(f"clientToken must be a string of 1-{MAX_CLIENT_TOKEN} characters")
    return token


def _bool(request: Mapping[str, Any], key: str, default: bool) -> bool:
    value = request.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _invalid(f"{key} must be true or false, not {value!r}")
    return value


def _int(request: Mapping[str, Any], key: str, low: int, high: int | None = None) -> int | None:
    value = request.get(key)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)  # IoT Jobs' own parser takes "3" for 3, and devices send it
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (
            high is not None and value > high):
        bound = f"{low}-{high}" if high is not None else f">= {low}"
        raise _invalid(f"{key} must be an integer {bound}, not {value!r}")
    return value


def _details(request: Mapping[str, Any]) -> dict[str, str] | None:
    details = request.get("statusDetails")
    if details is None:
        return None
    if not isinstance(details, dict):
        raise _invalid("statusDetails must be an object of string values")
    for key, value in details.items():
        if not DETAIL_KEY.fullmatch(key):
            raise _invalid(f"statusDetails key {key!r} is not 1-128 characters of "
                           "a-z A-Z 0-9 : _ -")
        if not isinstance(value, str):
            raise _invalid(f"statusDetails.{key} must be a string, not {type(value).__name__}")
        if not 1 <= len(value) <= MAX_DETAIL_VALUE or _CONTROL.search(value):
            raise _invalid(f"statusDetails.{key} must be 1-{MAX_DETAIL_VALUE} characters "
                           "without control characters")
    if len(details) > MAX_DETAILS:
        raise _invalid(f"statusDetails has {len(details)} keys; at most {MAX_DETAILS}")
    return dict(details)


def _step_timeout(request: Mapping[str, Any]) -> int | None:
    return _int(request, "stepTimeoutInMinutes", 1, MAX_STEP_TIMEOUT_MIN)


def parse_get_pending(request: Mapping[str, Any]) -> str | None:
    return _token(request)


def parse_describe(request: Mapping[str, Any]) -> DescribeRequest:
    return DescribeRequest(_token(request), _int(request, "executionNumber", 1),
                           _bool(request, "includeJobDocument", True))


def parse_start_next(request: Mapping[str, Any]) -> StartNextRequest:
    return StartNextRequest(_token(request), _details(request), _step_timeout(request))


def parse_update(request: Mapping[str, Any]) -> UpdateRequest:
    token = _token(request)
    raw = request.get("status")
    if raw is None:
        raise _invalid("status is required on every update "
                       "(IN_PROGRESS, SUCCEEDED, FAILED or REJECTED)")
    allowed = ", ".join(s.value for s in DEVICE_STATUSES)
    if not isinstance(raw, str) or raw not in {s.value for s in DEVICE_STATUSES}:
        raise _invalid(f"status {raw!r} cannot be set by a device; use one of {allowed}")
    return UpdateRequest(
        status=ExecutionStatus(raw),
        client_token=token,
        status_details=_details(request),
        expected_version=_int(request, "expectedVersion", 0),
        execution_number=_int(request, "executionNumber", 1),
        include_job_execution_state=_bool(request, "includeJobExecutionState", False),
        include_job_document=_bool(request, "includeJobDocument", False),
        step_timeout_minutes=_step_timeout(request),
    )


# ------------------------------------------------------------------ judging
def next_pending(pending: Iterable[Execution]) -> Execution | None:
    """``$next``: IN_PROGRESS first, then QUEUED, each oldest first.
    ``pending`` comes from DeploymentService.for_device (oldest queued first)."""
    queued = None
    for execution in pending:
        if execution.status is ExecutionStatus.IN_PROGRESS:
            return execution
        if execution.status is ExecutionStatus.QUEUED and queued is None:
            queued = execution
    return queued


def check_execution_number(execution: Execution, wanted: int | None, thing: str) -> None:
    if wanted is not None and wanted != execution.execution_number:
        raise JobsError(ErrorCode.RESOURCE_NOT_FOUND,
                        f"job {execution.deployment_id} on {thing} has no execution number "
                        f"{wanted}; the current one is {execution.execution_number}")


def check_describable(execution: Execution) -> None:
    if execution.status.is_terminal:
        raise JobsError(ErrorCode.TERMINAL_STATE_REACHED,
                        f"job {execution.deployment_id} on {execution.device_id} has ended "
                        f"({execution.status.value})", execution)


def judge_update(current: Execution, request: UpdateRequest) -> None:
    """Raise the error IoT Jobs answers for this update, or return if it is legal."""
    check_execution_number(current, request.execution_number, current.device_id)
    if request.expected_version is not None and request.expected_version != \
            current.version_number:
        raise JobsError(ErrorCode.VERSION_MISMATCH,
                        f"expectedVersion {request.expected_version} does not match the "
                        f"execution's version {current.version_number}", current)
    if request.status not in LEGAL_TRANSITIONS[current.status]:
        ended = " (the execution has ended)" if current.status.is_terminal else ""
        raise JobsError(ErrorCode.INVALID_STATE_TRANSITION,
                        f"job {current.deployment_id} on {current.device_id} cannot go from "
                        f"{current.status.value} to {request.status.value}{ended}", current)


# ------------------------------------------------------------------ responses
def epoch_s(when: datetime) -> int:
    return int(when.timestamp())


def execution_state(e: Execution) -> dict[str, Any]:
    """JobExecutionState."""
    return {"status": e.status.value, "statusDetails": dict(e.status_details),
            "versionNumber": e.version_number}


def execution_summary(e: Execution) -> dict[str, Any]:
    """JobExecutionSummary (GetPendingJobExecutions and notify)."""
    out: dict[str, Any] = {"jobId": e.deployment_id, "queuedAt": epoch_s(e.queued_at)}
    if e.started_at is not None:
        out["startedAt"] = epoch_s(e.started_at)
    out.update(lastUpdatedAt=epoch_s(e.updated_at), versionNumber=e.version_number,
               executionNumber=e.execution_number)
    return out


def execution_data(e: Execution, document: Mapping[str, Any] | None) -> dict[str, Any]:
    """JobExecutionData; ``document`` (already carrying a real URL) or None to leave it out."""
    out: dict[str, Any] = {"jobId": e.deployment_id, "thingName": e.device_id}
    if document is not None:
        out["jobDocument"] = dict(document)
    out.update(status=e.status.value, statusDetails=dict(e.status_details),
               queuedAt=epoch_s(e.queued_at))
    if e.started_at is not None:
        out["startedAt"] = epoch_s(e.started_at)
    out.update(lastUpdatedAt=epoch_s(e.updated_at), versionNumber=e.version_number,
               executionNumber=e.execution_number)
    return out


def with_token(body: dict[str, Any], token: str | None, now_s: int) -> dict[str, Any]:
    body["timestamp"] = now_s
    if token is not None:
        body["clientToken"] = token
    return body


def pending_jobs(pending: Iterable[Execution]) -> dict[str, Any]:
    """``{"inProgressJobs": [...], "queuedJobs": [...]}`` for get/accepted."""
    in_progress = [execution_summary(e) for e in pending
                   if e.status is ExecutionStatus.IN_PROGRESS]
    queued = [execution_summary(e) for e in pending if e.status is ExecutionStatus.QUEUED]
    return {"inProgressJobs": in_progress, "queuedJobs": queued}


def jobs_changed(pending: Iterable[Execution], now_s: int) -> dict[str, Any]:
    """JobExecutionsChanged (``notify``): the pending list by status; empty when none."""
    jobs: dict[str, list[dict[str, Any]]] = {}
    for e in pending:
        jobs.setdefault(e.status.value, []).append(execution_summary(e))
    return {"jobs": jobs, "timestamp": now_s}


def next_changed(execution: Execution | None, document: Mapping[str, Any] | None,
                 now_s: int) -> dict[str, Any]:
    """NextJobExecutionChanged (``notify-next``); no ``execution`` when nothing is pending."""
    body: dict[str, Any] = {}
    if execution is not None:
        body["execution"] = execution_data(execution, document)
    body["timestamp"] = now_s
    return body


def error_response(error: JobsError, token: str | None, now_s: int) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code.value, "message": error.message}
    with_token(body, token, now_s)
    if error.execution is not None and error.code in (
            ErrorCode.VERSION_MISMATCH, ErrorCode.INVALID_STATE_TRANSITION,
            ErrorCode.TERMINAL_STATE_REACHED):
        body["executionState"] = execution_state(error.execution)
    return body
