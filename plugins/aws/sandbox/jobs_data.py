"""The sandbox's stand-in for the AWS IoT Jobs data plane: what IoT Core does
for a job after CreateJob, which moto does not do.

moto implements the Jobs *control plane* (CreateJob, DescribeJob,
ListJobExecutionsForJob, CancelJob...) but no device side: it creates every
execution QUEUED at CreateJob and never answers a device's
``$aws/things/{thing}/jobs/...`` request, never rolls out at the job's rate,
times out or aborts. A deployment made on aws-local therefore stayed Queued.
This component is the missing part, for the sandbox only (on AWS, IoT Core's
own Jobs service does all of it):

- **rollout**: CreateJob's executions are taken out of moto's model at once
  (IoT Jobs creates an execution only when its rollout releases the thing, so
  ListJobExecutionsForJob does not list the others) and put back, QUEUED, at
  ``jobExecutionsRolloutConfig``'s rate (``maximumPerMinute``, or the
  exponential rate and its increase criteria), each with ``notify-next``;
- **the device API over MQTT** on the sandbox's broker: ``start-next``,
  ``get`` (pending), ``{jobId}/get`` and ``$next/get``, ``{jobId}/update``
  (with ``expectedVersion`` and IoT Jobs' legal moves), answered on
  ``/accepted`` or ``/rejected`` with the request's ``clientToken``; job
  documents go out with their ``${aws:iot:s3-presigned-url:...}`` placeholder
  replaced by a presigned GET of the firmware bucket on the sandbox's S3;
- **the service's own verdicts**: ``timeoutConfig`` (TIMED_OUT),
  ``abortConfig`` (the job CANCELED with the crossed criterion as its comment,
  queued executions canceled, unreleased things never released), CancelJob
  and CancelJobExecution reaching the devices (moto leaves executions QUEUED
  after CancelJob), the job COMPLETED when every thing has finished, and
  ``jobProcessDetails`` counted.

moto runs in the sandbox's own process (``moto_endpoint``), so this works on
moto's model objects directly, as ``publish_bridge`` does for Publish; every
request a console or the API sends still goes over HTTP to moto unchanged.
The abort criteria and rates are core's rollout model (``JobConfig``,
``abort_reason``), the same the local hub's rollout engine applies.

Devices trust the code-signing keys the team trusts (``iot-trusted-keys-
{stage}``): the sandbox provisions its simulated fleet by writing those
public keys to the directory the devices' trust stores watch, before it
releases a job's first execution.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from core.errors import ValidationError
from core.model import LEGAL_TRANSITIONS, ExecutionStatus
from core.model.rollout import JobConfig
from core.protocol.ota import placeholder_target
from core.protocol.topics import jobs_topic, parse_jobs_topic
from core.services.rollout import abort_reason

log = logging.getLogger(__name__)

TICK_S = 1.0
JOBS_REQUESTS = "$aws/things/+/jobs/#"
NEXT = "$next"
DEVICE_STATUSES = frozenset({"IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED"})
TERMINAL = frozenset(s.value for s in ExecutionStatus if s.is_terminal)
PENDING = ("IN_PROGRESS", "QUEUED")
DEFAULT_URL_EXPIRY_S = 3600
# moto's FakeJobExecution statuses -> the names jobProcessDetails counts them under
_PROCESS_COUNTS = {"QUEUED": "numberOfQueuedThings", "IN_PROGRESS": "numberOfInProgressThings",
                   "SUCCEEDED": "numberOfSucceededThings", "FAILED": "numberOfFailedThings",
                   "REJECTED": "numberOfRejectedThings", "CANCELED": "numberOfCanceledThings",
                   "REMOVED": "numberOfRemovedThings", "TIMED_OUT": "numberOfTimedOutThings"}


class Refused(Exception):
    """A request IoT Jobs rejects: its ErrorResponse ``code`` and ``message``."""

    def __init__(self, code: str, message: str, state: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.state = code, message, state


@dataclass
class _Rollout:
    """One job's rollout, kept beside moto's FakeJob."""

    backend: Any
    job_id: str
    config: JobConfig
    held: list[tuple[str, Any]]  # (thing, FakeJobExecution) not yet released, in order
    tokens: float = 1.0
    increases: int = 0
    notified_at_increase: int = 0
    succeeded_at_increase: int = 0
    last_tick: float = field(default_factory=time.monotonic)
    released: int = 0

    @property
    def job(self) -> Any:
        return self.backend.jobs.get(self.job_id)


def _now() -> datetime:
    """UTC without a zone, as moto keeps every time of its model."""
    return datetime.now(UTC).replace(tzinfo=None)


def _epoch(when: datetime | None) -> int | None:
    if not isinstance(when, datetime):
        return None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())


def _thing(thing_arn: str) -> str:
    return thing_arn.rsplit("/", 1)[-1]


class JobsDataPlane:
    def __init__(self, broker: tuple[str, int], endpoint_url: str, region: str, *,
                 trusted_pems: Callable[[], Iterable[bytes]] | None = None,
                 keys_dir: Path | None = None, tick_s: float = TICK_S) -> None:
        """``trusted_pems`` lists the team's trusted public keys (PEM), written
        to ``keys_dir`` (the fleet's watched trust directory) before a job's
        first release."""
        self.broker = broker
        self.endpoint_url = endpoint_url
        self.region = region
        self.tick_s = tick_s
        self._trusted_pems = trusted_pems
        self._keys_dir = keys_dir
        self._keys_stale = True
        self._lock = threading.RLock()
        self._rollouts: dict[tuple[int, str], _Rollout] = {}
        self._originals: dict[str, Any] = {}
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._s3: Any = None
        self.answered = 0
        self.rejected = 0
        self._connected = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                   client_id=f"sandbox-iot-jobs-{uuid.uuid4().hex[:8]}")
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message

    # ------------------------------------------------------------------ start, stop
    def start(self, timeout_s: float = 10.0) -> JobsDataPlane:
        import boto3
        from botocore.config import Config

        self._s3 = boto3.client("s3", region_name=self.region, endpoint_url=self.endpoint_url,
                                aws_access_key_id="sandbox", aws_secret_access_key="sandbox",
                                config=Config(s3={"addressing_style": "path"},
                                              signature_version="s3v4"))
        self._patch_moto()
        self._client.connect(*self.broker, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(timeout_s):
            self.stop()
            raise RuntimeError(f"the IoT Jobs stand-in could not connect to the broker at "
                               f"{self.broker[0]}:{self.broker[1]}")
        self._ticker = threading.Thread(target=self._run, name="sandbox-iot-jobs", daemon=True)
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None
        from moto.iot.models import IoTBackend

        for name, original in self._originals.items():
            setattr(IoTBackend, name, original)
        self._originals.clear()
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any,
                    _props: Any = None) -> None:
        if not getattr(reason, "is_failure", False):
            client.subscribe(JOBS_REQUESTS, qos=1)
            self._connected.set()

    # ------------------------------------------------------------------ moto's control plane
    def _patch_moto(self) -> None:
        """CreateJob, CancelJob and CancelJobExecution as IoT Jobs does them:
        moto's own code first, then what the service does next."""
        from moto.iot.models import IoTBackend

        plane = self
        create, cancel = IoTBackend.create_job, IoTBackend.cancel_job
        cancel_execution = IoTBackend.cancel_job_execution

        def create_job(backend: Any, *args: Any, **kwargs: Any) -> Any:
            result = create(backend, *args, **kwargs)
            plane._adopt(backend, result[1])
            return result

        def cancel_job(backend: Any, job_id: str, *args: Any, **kwargs: Any) -> Any:
            job = cancel(backend, job_id, *args, **kwargs)
            plane._canceled(backend, job_id, force=bool(job.force))
            return job

        def cancel_job_execution(backend: Any, job_id: str, thing_name: str,
                                 *args: Any, **kwargs: Any) -> None:
            cancel_execution(backend, job_id, thing_name, *args, **kwargs)
            plane._execution_canceled(backend, job_id, thing_name)

        self._originals = {"create_job": create, "cancel_job": cancel,
                           "cancel_job_execution": cancel_execution}
        IoTBackend.create_job = create_job  # type: ignore[method-assign,assignment]
        IoTBackend.cancel_job = cancel_job  # type: ignore[method-assign,assignment]
        IoTBackend.cancel_job_execution = cancel_job_execution  # type: ignore[method-assign,assignment]

    def _adopt(self, backend: Any, job_id: str) -> None:
        """A new job: its executions wait for the rollout (none is listed yet)."""
        with self._lock:
            job = backend.jobs[job_id]
            held = []
            for thing_arn in job.targets:
                thing = _thing(thing_arn)
                execution = backend.job_executions.pop((job_id, thing), None)
                if execution is not None:
                    held.append((thing, execution))
            job.status = "IN_PROGRESS"
            self._rollouts[(id(backend), job_id)] = _Rollout(
                backend, job_id, _config_of(job), held)
            self._keys_stale = True
            self._count(backend, job)
        log.info("IoT Jobs stand-in: job %s for %d things", job_id, len(held))

    def _canceled(self, backend: Any, job_id: str, *, force: bool) -> None:
        """CancelJob: queued executions (and in-progress ones with force) are
        canceled, unreleased things never hear of the job."""
        with self._lock:
            rollout = self._rollouts.get((id(backend), job_id))
            if rollout is not None:
                rollout.held.clear()
            self._cancel_executions(backend, job_id, force=force)
            job = backend.jobs.get(job_id)
            if job is not None:
                self._count(backend, job)

    def _cancel_executions(self, backend: Any, job_id: str, *, force: bool) -> None:
        touched = []
        for (jid, thing), execution in list(backend.job_executions.items()):
            if jid == job_id and (execution.status == "QUEUED" or (
                    force and execution.status == "IN_PROGRESS")):
                self._set_status(execution, "CANCELED")
                execution.force_canceled = force
                touched.append(thing)
        for thing in touched:
            self._notify_next(backend, thing)

    def _execution_canceled(self, backend: Any, job_id: str, thing: str) -> None:
        with self._lock:
            execution = backend.job_executions.get((job_id, thing))
            if execution is not None and execution.status == "CANCELED":
                execution.version_number += 1
                execution.last_updated_at = _now()
            self._notify_next(backend, thing)

    # ------------------------------------------------------------------ the service's clock
    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
            except Exception:  # the next tick tries again
                log.exception("IoT Jobs stand-in: tick failed")

    def tick(self) -> None:
        """Time out, abort, release at the rate, complete: every running job."""
        if self._keys_stale:
            self._provision_keys()
        with self._lock:
            for rollout in list(self._rollouts.values()):
                job = rollout.job
                if job is None or job.status != "IN_PROGRESS":
                    continue
                self._advance(rollout, job)

    def _advance(self, rollout: _Rollout, job: Any) -> None:
        backend = rollout.backend
        now = time.monotonic()
        elapsed = max(0.0, now - rollout.last_tick)
        rollout.last_tick = now
        self._time_out(rollout, job)
        counts = self._counts(backend, rollout.job_id)
        reason = abort_reason(rollout.config, counts)
        if reason is not None:
            log.warning("IoT Jobs stand-in: job %s aborted: %s", rollout.job_id, reason)
            job.status = "CANCELED"
            job.comment = reason
            job.reason_code = "ABORTED"
            job.last_updated_at = _now()
            rollout.held.clear()
            self._cancel_executions(backend, rollout.job_id, force=False)
            self._count(backend, job)
            return
        self._raise_rate(rollout, counts)
        rate = rollout.config.rollout.rate_per_minute(rollout.increases)
        if self._keys_stale:
            allowed = 0  # the fleet learns the team's keys first (next tick)
        elif math.isinf(rate):
            allowed = len(rollout.held)
        else:
            rollout.tokens = min(rollout.tokens + rate / 60.0 * elapsed, max(rate, 1.0))
            allowed = min(len(rollout.held), int(rollout.tokens))
            rollout.tokens -= allowed
        for _ in range(allowed):
            self._release(rollout, *rollout.held.pop(0))
        if not rollout.held and all(
                e.status in TERMINAL for e in self._executions(backend, rollout.job_id)):
            job.status = "COMPLETED"
            job.completed_at = job.last_updated_at = _now()
        self._count(backend, job)

    def _raise_rate(self, rollout: _Rollout, counts: dict[str, int]) -> None:
        """The exponential rate's increase criteria, counted from the last
        increase (as IoT Jobs and the local rollout engine count them)."""
        exp = rollout.config.rollout.exponential
        if exp is None:
            return
        notified = rollout.released
        succeeded = counts.get("SUCCEEDED", 0)
        while True:
            if exp.notified is not None and (
                    notified - rollout.notified_at_increase >= exp.notified):
                rollout.notified_at_increase += exp.notified
            elif exp.succeeded is not None and (
                    succeeded - rollout.succeeded_at_increase >= exp.succeeded):
                rollout.succeeded_at_increase += exp.succeeded
            else:
                return
            rollout.increases += 1

    def _release(self, rollout: _Rollout, thing: str, execution: Any) -> None:
        now = _now()
        execution.status = "QUEUED"
        execution.queued_at = execution.last_updated_at = now
        execution.started_at = None
        execution.execution_number = 1
        execution.version_number = 1
        execution.approximate_seconds_before_time_out = None
        execution.status_details_map = {}
        rollout.backend.job_executions[(rollout.job_id, thing)] = execution
        rollout.released += 1
        self._notify_next(rollout.backend, thing)

    def _time_out(self, rollout: _Rollout, job: Any) -> None:
        minutes = (job.timeout_config or {}).get("inProgressTimeoutInMinutes")
        if not minutes:
            return
        limit = float(minutes) * 60
        now = _now()
        for execution in self._executions(rollout.backend, rollout.job_id):
            if execution.status == "IN_PROGRESS" and execution.started_at is not None and (
                    (now - execution.started_at).total_seconds() >= limit):
                self._set_status(execution, "TIMED_OUT")
                self._notify_next(rollout.backend, _thing(execution.thing_arn))

    # ------------------------------------------------------------------ moto's model
    @staticmethod
    def _executions(backend: Any, job_id: str) -> list[Any]:
        return [e for (jid, _t), e in list(backend.job_executions.items()) if jid == job_id]

    def _counts(self, backend: Any, job_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self._executions(backend, job_id):
            counts[e.status] = counts.get(e.status, 0) + 1
        return counts

    def _count(self, backend: Any, job: Any) -> None:
        """``jobProcessDetails`` as DescribeJob answers it."""
        counts = self._counts(backend, job.job_id)
        details: dict[str, Any] = {name: counts.get(status, 0)
                                   for status, name in _PROCESS_COUNTS.items()}
        details["processingTargets"] = [
            e.thing_arn for e in self._executions(backend, job.job_id) if e.status in PENDING]
        job.job_process_details = details

    @staticmethod
    def _set_status(execution: Any, status: str) -> None:
        execution.status = status
        execution.version_number += 1
        execution.last_updated_at = _now()
        execution.approximate_seconds_before_time_out = None

    def _pending(self, backend: Any, thing: str) -> list[tuple[str, Any]]:
        """A thing's QUEUED and IN_PROGRESS executions: in progress first, then
        queued, each oldest first (the order ``$next`` picks from)."""
        found = [(jid, e) for (jid, t), e in list(backend.job_executions.items())
                 if t == thing and e.status in PENDING]
        return sorted(found, key=lambda p: (p[1].status != "IN_PROGRESS", p[1].queued_at))

    def _backends(self) -> list[Any]:
        from moto.iot.models import iot_backends

        found = []
        for account in list(iot_backends):
            backend = iot_backends[account].get(self.region)
            if backend is not None:
                found.append(backend)
        return found

    def _backend_of(self, thing: str) -> Any:
        """The account whose jobs name the thing (the sandbox has one account)."""
        backends = self._backends()
        for backend in backends:
            if any(t == thing for (_j, t) in list(backend.job_executions)):
                return backend
        return backends[0] if backends else None

    # ------------------------------------------------------------------ documents
    def _document(self, job: Any) -> dict[str, Any]:
        try:
            document = json.loads(job.document or "{}")
        except ValueError:
            return {}
        expiry = int((job.presigned_url_config or {}).get("expiresInSec")
                     or DEFAULT_URL_EXPIRY_S)
        presigned = _presigned(document, lambda url: self._presign(url, expiry))
        return presigned if isinstance(presigned, dict) else {}

    def _presign(self, value: str, expiry_s: int) -> str:
        """``${aws:iot:s3-presigned-url:https://s3.<region>.amazonaws.com/<bucket>/<key>}``
        -> a presigned GET of that object on the sandbox's S3."""
        target = placeholder_target(value)
        if target is None:
            return value
        path = urllib.parse.urlsplit(target).path.lstrip("/")
        bucket, _, key = path.partition("/")
        url: str = self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": urllib.parse.unquote(key)},
            ExpiresIn=expiry_s)
        return url

    def _provision_keys(self) -> None:
        # cleared before reading: a job created meanwhile (its key trusted before
        # it) sets it again, so its executions wait for the next sync
        with self._lock:
            self._keys_stale = False
        if self._trusted_pems is None or self._keys_dir is None:
            return
        try:
            pems = list(self._trusted_pems())
        except Exception:  # the next tick tries again
            log.exception("IoT Jobs stand-in: reading the team's trusted keys failed")
            self._keys_stale = True
            return
        self._keys_dir.mkdir(parents=True, exist_ok=True)
        wanted = {f"trusted-{i}.pem": pem for i, pem in enumerate(sorted(pems))}
        for old in self._keys_dir.glob("*.pem"):
            if old.name not in wanted:
                old.unlink(missing_ok=True)
        for name, pem in wanted.items():
            path = self._keys_dir / name
            if not path.exists() or path.read_bytes() != pem:
                partial = path.with_suffix(".part")  # devices never read half a key
                partial.write_bytes(pem)
                partial.replace(path)

    # ------------------------------------------------------------------ the device API
    def _on_message(self, client: Any, _userdata: Any, message: Any) -> None:
        try:
            self.handle(message.topic, bytes(message.payload))
        except Exception:  # one bad request never stops the service
            log.exception("IoT Jobs stand-in: %s failed", message.topic)

    def handle(self, topic: str, payload: bytes) -> None:
        parsed = parse_jobs_topic(topic)
        if parsed is None:
            return
        thing, tail = parsed.thing, parsed.tail
        if not tail or tail[-1] in ("accepted", "rejected") or tail in (
                ("notify",), ("notify-next",)):
            return  # answers and notifications, ours included
        try:
            request = json.loads(payload) if payload.strip() else {}
        except (ValueError, UnicodeDecodeError):
            self._answer(topic, "rejected", {"code": "InvalidJson",
                                             "message": "the request is not JSON"})
            return
        if not isinstance(request, dict):
            self._answer(topic, "rejected", {"code": "InvalidJson",
                                             "message": "the request is not a JSON object"})
            return
        token = request.get("clientToken")
        with self._lock:
            backend = self._backend_of(thing)
            try:
                if backend is None:
                    raise Refused("ResourceNotFound", f"no jobs for thing {thing!r}")
                body, after = self._dispatch(backend, thing, tail, request)
            except Refused as refused:
                body = {"code": refused.code, "message": refused.message}
                if refused.state is not None:
                    body["executionState"] = refused.state
                self.rejected += 1
                self._answer(topic, "rejected", self._stamped(body, token))
                return
            self.answered += 1
            self._answer(topic, "accepted", self._stamped(body, token))
            if after is not None:
                after()

    def _dispatch(self, backend: Any, thing: str, tail: tuple[str, ...],
                  request: dict[str, Any]
                  ) -> tuple[dict[str, Any], Callable[[], None] | None]:
        if tail == ("get",):
            pending = self._pending(backend, thing)
            return {"inProgressJobs": [_summary(j, e) for j, e in pending
                                       if e.status == "IN_PROGRESS"],
                    "queuedJobs": [_summary(j, e) for j, e in pending
                                   if e.status == "QUEUED"]}, None
        if tail == ("start-next",):
            pending = self._pending(backend, thing)
            if not pending:
                return {}, None
            job_id, execution = pending[0]
            if execution.status == "QUEUED":
                self._move(backend, job_id, execution, "IN_PROGRESS",
                           _details(request.get("statusDetails")))
            return {"execution": self._data(backend, job_id, thing, execution, True)}, None
        if len(tail) == 2 and tail[1] == "get":
            if tail[0] == NEXT:
                pending = self._pending(backend, thing)
                if not pending:
                    return {}, None
                job_id, execution = pending[0]
            else:
                job_id, execution = tail[0], self._execution(backend, tail[0], thing)
                if execution.status in TERMINAL:
                    raise Refused("TerminalStateReached",
                                  f"job {job_id} on {thing} has ended ({execution.status})",
                                  _state(execution))
            include = request.get("includeJobDocument", True) is not False
            return {"execution": self._data(backend, job_id, thing, execution, include)}, None
        if len(tail) == 2 and tail[1] == "update" and tail[0] != NEXT:
            return self._update(backend, thing, tail[0], request)
        raise Refused("InvalidTopic", f"jobs/{'/'.join(tail)} is not a Jobs API topic")

    def _update(self, backend: Any, thing: str, job_id: str, request: dict[str, Any]
                ) -> tuple[dict[str, Any], Callable[[], None] | None]:
        execution = self._execution(backend, job_id, thing)
        status = request.get("status")
        if status not in DEVICE_STATUSES:
            raise Refused("InvalidRequest", f"status {status!r} cannot be set by a device; "
                          f"use one of {', '.join(sorted(DEVICE_STATUSES))}")
        expected = request.get("expectedVersion")
        if expected is not None and str(expected) != str(execution.version_number):
            raise Refused("VersionMismatch", f"expectedVersion {expected} does not match the "
                          f"execution's version {execution.version_number}", _state(execution))
        current = ExecutionStatus(execution.status)
        if ExecutionStatus(status) not in LEGAL_TRANSITIONS[current]:
            raise Refused("InvalidStateTransition", f"job {job_id} on {thing} cannot go from "
                          f"{current.value} to {status}", _state(execution))
        self._move(backend, job_id, execution, status, _details(request.get("statusDetails")))
        body: dict[str, Any] = {}
        if request.get("includeJobExecutionState"):
            body["executionState"] = _state(execution)
        if request.get("includeJobDocument"):
            body["jobDocument"] = self._document(backend.jobs[job_id])
        if status not in TERMINAL:
            return body, None

        def finished() -> None:
            self._notify_next(backend, thing)
            rollout = self._rollouts.get((id(backend), job_id))
            job = backend.jobs.get(job_id)
            if rollout is not None and job is not None and job.status == "IN_PROGRESS":
                self._advance(rollout, job)  # the abort check runs on every verdict

        return body, finished

    def _move(self, backend: Any, job_id: str, execution: Any, status: str,
              details: dict[str, str] | None) -> None:
        if execution.started_at is None and status != "QUEUED":
            execution.started_at = _now()
        if details is not None:
            execution.status_details_map = details
        self._set_status(execution, status)
        job = backend.jobs.get(job_id)
        if job is not None:
            self._count(backend, job)

    @staticmethod
    def _execution(backend: Any, job_id: str, thing: str) -> Any:
        execution = backend.job_executions.get((job_id, thing))
        if execution is None:
            raise Refused("ResourceNotFound", f"job {job_id!r} has no execution on thing "
                          f"{thing!r}")
        return execution

    def _data(self, backend: Any, job_id: str, thing: str, execution: Any,
              with_document: bool) -> dict[str, Any]:
        """JobExecutionData."""
        out: dict[str, Any] = {"jobId": job_id, "thingName": thing}
        job = backend.jobs.get(job_id)
        if with_document and job is not None:
            out["jobDocument"] = self._document(job)
        out.update(status=execution.status, statusDetails=dict(execution.status_details_map),
                   queuedAt=_epoch(execution.queued_at))
        if execution.started_at is not None:
            out["startedAt"] = _epoch(execution.started_at)
        out.update(lastUpdatedAt=_epoch(execution.last_updated_at),
                   versionNumber=execution.version_number,
                   executionNumber=execution.execution_number)
        return out

    def _notify_next(self, backend: Any, thing: str) -> None:
        """``notify-next`` (the thing's next execution, or none) and ``notify``."""
        pending = self._pending(backend, thing)
        now = int(time.time())
        body: dict[str, Any] = {"timestamp": now}
        if pending:
            job_id, execution = pending[0]
            body["execution"] = self._data(backend, job_id, thing, execution, True)
        jobs: dict[str, list[dict[str, Any]]] = {}
        for job_id, execution in pending:
            jobs.setdefault(execution.status, []).append(_summary(job_id, execution))
        try:
            self._publish(jobs_topic(thing, "notify"), {"jobs": jobs, "timestamp": now})
            self._publish(jobs_topic(thing, "notify-next"), body)
        except ValidationError:
            log.warning("IoT Jobs stand-in: %r is not a thing name a topic can carry", thing)

    def _stamped(self, body: dict[str, Any], token: Any) -> dict[str, Any]:
        body["timestamp"] = int(time.time())
        if isinstance(token, str) and len(token) <= 64:
            body["clientToken"] = token
        return body

    def _answer(self, request_topic: str, suffix: str, body: dict[str, Any]) -> None:
        self._publish(f"{request_topic}/{suffix}", body)

    def _publish(self, topic: str, body: dict[str, Any]) -> None:
        info = self._client.publish(topic, json.dumps(body, separators=(",", ":")), qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.warning("IoT Jobs stand-in: could not publish on %s (%s)", topic,
                        mqtt.error_string(info.rc))


def _config_of(job: Any) -> JobConfig:
    """The job's rollout, abort and timeout settings as CreateJob got them."""
    raw = {"jobExecutionsRolloutConfig": job.job_executions_rollout_config,
           "abortConfig": job.abort_config, "timeoutConfig": job.timeout_config,
           "jobExecutionsRetryConfig": job.job_execution_retry_config}
    try:
        return JobConfig.from_aws({k: v for k, v in raw.items() if v})
    except ValidationError as exc:
        log.warning("IoT Jobs stand-in: job %s: %s; released at once, never aborted",
                    job.job_id, exc)
        return JobConfig()


def _presigned(value: Any, presign: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return presign(value)
    if isinstance(value, dict):
        return {k: _presigned(v, presign) for k, v in value.items()}
    if isinstance(value, list):
        return [_presigned(v, presign) for v in value]
    return value


def _details(raw: Any) -> dict[str, str] | None:
    if not isinstance(raw, dict):
        return None
    return {str(k): str(v) for k, v in list(raw.items())[:10]}


def _state(execution: Any) -> dict[str, Any]:
    """JobExecutionState."""
    return {"status": execution.status, "statusDetails": dict(execution.status_details_map),
            "versionNumber": execution.version_number}


def _summary(job_id: str, execution: Any) -> dict[str, Any]:
    """JobExecutionSummary."""
    out: dict[str, Any] = {"jobId": job_id, "queuedAt": _epoch(execution.queued_at)}
    if execution.started_at is not None:
        out["startedAt"] = _epoch(execution.started_at)
    out.update(lastUpdatedAt=_epoch(execution.last_updated_at),
               versionNumber=execution.version_number,
               executionNumber=execution.execution_number)
    return out
