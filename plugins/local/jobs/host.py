"""The hub's side of the AWS IoT Jobs device API: answer every thing's requests
and tell things about new and withdrawn jobs.

Runs on the hub's writer thread (requests) and is the rollout engine's
``JobNotifier`` (releases and cancellations, from the same thread). Every
change is written to the store *before* ``/accepted`` is published, so nothing
a device was told was accepted can be lost, whatever happens to the broker or
the hub afterwards. Job documents are delivered with their presigned-URL
placeholder replaced by a fresh, expiring file-server URL.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.errors import IllegalTransition, NotFound, ValidationError
from core.model import Deployment, Execution, ExecutionStatus
from core.model.events import FleetEvent
from core.model.link import QuarantinedMessage
from core.model.timeutil import utcnow
from core.ports.deployments import DeploymentService
from core.protocol.ota import DETAIL_MESSAGE
from core.protocol.payloads import ProtocolError, decode_json_object
from core.protocol.topics import jobs_topic, parse_jobs_topic
from plugins.local.jobs import api
from plugins.local.jobs.api import Api, ErrorCode, JobsError, UpdateRequest
from plugins.local.jobs.batch import PendingMany

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], None]
Presign = Callable[[str], str]


def _encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def presign_document(value: Any, presign: Presign) -> Any:
    """A copy of a job document with every placeholder string presigned
    (IoT Jobs substitutes placeholders wherever they appear in the document)."""
    if isinstance(value, str):
        return presign(value)
    if isinstance(value, dict):
        return {k: presign_document(v, presign) for k, v in value.items()}
    if isinstance(value, list):
        return [presign_document(v, presign) for v in value]
    return value


class JobsHost:
    def __init__(self, deployments: DeploymentService, publish: Publish, presign: Presign, *,
                 clock: Callable[[], float] = time.time,
                 pending_many: PendingMany | None = None) -> None:
        self._deployments = deployments
        # Pending executions read for a drain's things in one query
        # (``prefetch``), good until ``forget_prefetched`` or until this host
        # changes that thing's executions. Never kept across drains: a
        # deployment another process creates or cancels is read by the next
        # drain, so no device is told of a job that was withdrawn meanwhile
        # any later than the per-request reads told it.
        self._pending_many = pending_many
        self._prefetched: dict[str, list[Execution]] = {}
        self._publish = publish
        self._presign = presign
        self.clock = clock
        # Called (outside the lock) with every execution a device or a step
        # timer moved to a terminal state: the rollout engine's abort check.
        self.on_terminal: Callable[[Execution], None] | None = None
        # Requests that could not be read are kept for diagnosis (the hub's quarantine).
        self.quarantine: Callable[[Sequence[QuarantinedMessage]], None] | None = None
        self.accepted_by_api: Counter[str] = Counter()
        self.rejected_by_code: Counter[str] = Counter()
        self._documents: dict[str, dict[str, Any]] = {}
        # (job id, thing) -> epoch second the step timer fires. In memory: a
        # restarted hub forgets step timers (the job's in-progress timeout,
        # kept by the rollout engine in the store, still applies).
        self._step_deadlines: dict[tuple[str, str], float] = {}
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ requests
    def prefetch(self, things: Sequence[str]) -> int:
        """Read the pending executions of ``things`` in one query for the
        requests about to be handled; returns how many were read. Without a
        batch reader it does nothing (each request reads its own)."""
        if self._pending_many is None or not things:
            return 0
        with self._lock:
            wanted = [t for t in dict.fromkeys(things) if t not in self._prefetched]
            if wanted:
                self._prefetched.update(self._pending_many(wanted))
            return len(wanted)

    def forget_prefetched(self) -> None:
        """End of a drain: what was read may be changed by others from now on."""
        with self._lock:
            self._prefetched.clear()

    def handle(self, topic: str, payload: bytes, now_s: int | None = None) -> list[FleetEvent]:
        parsed = parse_jobs_topic(topic)
        if parsed is None:
            return []
        now = int(self.clock()) if now_s is None else now_s
        thing = parsed.thing
        try:
            route = api.route(parsed.tail)
        except JobsError as error:
            self._reject(topic, error, None, now)
            return []
        if route is None:
            return []  # our own replies and notifications come back on the wildcard
        try:
            request = decode_json_object(payload, f"jobs {route.api.value} request from "
                                                  f"{thing}", document=True) \
                if payload.strip() else {}
        except ProtocolError as exc:
            # deep nesting, huge integers, bad UTF-8 included: answered, never raised
            self._reject(topic, JobsError(ErrorCode.INVALID_JSON, str(exc)), None, now)
            self._quarantine_request(topic, payload, thing, f"jobs_{exc.reason}", str(exc))
            return []
        terminal: list[Execution] = []
        token = api.client_token_of(request)
        try:
            with self._lock:
                body = self._dispatch(route, thing, request, now, terminal)
        except JobsError as error:
            self._reject(topic, error, token, now)
            return []
        except Exception as exc:
            if is_store_error(exc):
                # not refused: the hub keeps the request unacknowledged and asks
                # again when the database is back, so the device keeps its job
                raise
            log.exception("jobs %s for %s failed", route.api.value, thing)
            self._reject(topic, JobsError(ErrorCode.INTERNAL_ERROR,
                                          f"the request could not be processed: {exc}"),
                         token, now)
            return []
        self.accepted_by_api[route.api.value] += 1
        self._reply(topic, "accepted", body)
        self._finished(terminal)
        return []

    def _dispatch(self, route: api.Route, thing: str, request: Mapping[str, Any], now: int,
                  terminal: list[Execution]) -> dict[str, Any]:
        if route.api is Api.GET_PENDING:
            token = api.parse_get_pending(request)
            return api.with_token(api.pending_jobs(self._pending(thing)), token, now)
        if route.api is Api.START_NEXT:
            return self._start_next(thing, api.parse_start_next(request), now)
        if route.api is Api.DESCRIBE:
            return self._describe(thing, route.job_id, api.parse_describe(request), now)
        return self._update(thing, route.job_id, api.parse_update(request), now, terminal)

    def _describe(self, thing: str, job_id: str, request: api.DescribeRequest,
                  now: int) -> dict[str, Any]:
        if job_id == api.NEXT:
            execution = api.next_pending(self._pending(thing))
            if execution is None:
                return api.with_token({}, request.client_token, now)  # nothing pending
        else:
            execution = self._execution(job_id, thing)
        api.check_execution_number(execution, request.execution_number, thing)
        api.check_describable(execution)
        document = self._document(execution.deployment_id) if \
            request.include_job_document else None
        return api.with_token({"execution": api.execution_data(execution, document)},
                              request.client_token, now)

    def _start_next(self, thing: str, request: api.StartNextRequest,
                    now: int) -> dict[str, Any]:
        execution = api.next_pending(self._pending(thing))
        if execution is None:
            return api.with_token({}, request.client_token, now)
        if execution.status is ExecutionStatus.QUEUED:
            execution = self._apply(execution, UpdateRequest(
                ExecutionStatus.IN_PROGRESS, status_details=request.status_details,
                step_timeout_minutes=request.step_timeout_minutes), now)
        # Starting the next job never changes which job is next: no notify-next.
        return api.with_token({"execution": api.execution_data(
            execution, self._document(execution.deployment_id))}, request.client_token, now)

    def _update(self, thing: str, job_id: str, request: UpdateRequest, now: int,
                terminal: list[Execution]) -> dict[str, Any]:
        current = self._execution(job_id, thing)
        api.judge_update(current, request)
        before = self._pending(thing) if request.status is not current.status else None
        updated = self._apply(current, request, now)
        if before is not None:
            after = [updated if e.deployment_id == job_id else e for e in before
                     if not (e.deployment_id == job_id and updated.status.is_terminal)]
            self._announce(thing, before, after, now)
        if updated.status.is_terminal:
            terminal.append(updated)
        body: dict[str, Any] = {}
        if request.include_job_execution_state:
            body["executionState"] = api.execution_state(updated)
        if request.include_job_document:
            body["jobDocument"] = self._document(job_id)
        return api.with_token(body, request.client_token, now)

    def _apply(self, current: Execution, request: UpdateRequest, now: int) -> Execution:
        """Persist a judged update (this is what makes /accepted safe to send)."""
        self._changed(current.device_id)
        try:
            updated = self._deployments.update_execution(
                current.deployment_id, current.device_id, request.status,
                status_details=request.status_details,
                expected_version=request.expected_version)
        except IllegalTransition:
            # Someone (a console cancelling, a timeout) moved it meanwhile:
            # answer as IoT Jobs would against the execution as it is now.
            fresh = self._execution(current.deployment_id, current.device_id)
            api.judge_update(fresh, request)
            raise JobsError(ErrorCode.INVALID_STATE_TRANSITION,
                            f"job {fresh.deployment_id} on {fresh.device_id} changed while "
                            "updating; try again", fresh) from None
        key = (updated.deployment_id, updated.device_id)
        if updated.status.is_terminal:
            self._step_deadlines.pop(key, None)
        elif request.step_timeout_minutes is not None:
            self._step_deadlines[key] = now + 60 * request.step_timeout_minutes
        return updated

    # ------------------------------------------------------------------ JobNotifier
    def released(self, deployment: Deployment, executions: Sequence[Execution]) -> None:
        """New QUEUED executions (a rollout step or a retry): notify, and
        notify-next where the new execution is now the thing's next job."""
        now = int(self.clock())
        released = {(e.device_id, e.deployment_id) for e in executions}
        with self._lock:
            for thing in dict.fromkeys(e.device_id for e in executions):
                self._changed(thing)
                after = self._pending(thing)
                before = [e for e in after if (thing, e.deployment_id) not in released]
                self._announce(thing, before, after, now, force_notify=True)

    def canceled(self, deployment: Deployment, device_ids: Sequence[str]) -> None:
        """Executions withdrawn: the pending list and the next job (or none) again."""
        now = int(self.clock())
        with self._lock:
            for thing in dict.fromkeys(device_ids):
                self._changed(thing)
                after = self._pending(thing)
                self._step_deadlines.pop((deployment.deployment_id, thing), None)
                self._notify(thing, after, now)
                self._notify_next(thing, api.next_pending(after), now)

    # ------------------------------------------------------------------ timers
    def tick(self) -> None:
        """Time out executions whose step timer (stepTimeoutInMinutes) ran out."""
        now = self.clock()
        due = [key for key, deadline in list(self._step_deadlines.items()) if deadline <= now]
        terminal: list[Execution] = []
        for job_id, thing in due:
            with self._lock:
                self._step_deadlines.pop((job_id, thing), None)
                self._changed(thing)
                try:
                    before = self._pending(thing)
                    timed_out = self._deployments.update_execution(
                        job_id, thing, ExecutionStatus.TIMED_OUT,
                        status_details={DETAIL_MESSAGE: "no update before the step timer "
                                                        "(stepTimeoutInMinutes) ran out"})
                except (IllegalTransition, NotFound):
                    continue  # finished or withdrawn meanwhile
                except Exception:
                    log.exception("timing out job %s on %s failed", job_id, thing)
                    continue
                after = [e for e in before if e.deployment_id != job_id]
                self._announce(thing, before, after, int(now))
                terminal.append(timed_out)
        self._finished(terminal)

    # ------------------------------------------------------------------ helpers
    def _pending(self, thing: str) -> list[Execution]:
        cached = self._prefetched.get(thing)
        if cached is not None:
            return list(cached)
        return self._deployments.for_device(thing, api.PENDING)

    def _changed(self, thing: str) -> None:
        """This host (or the rollout engine through it) changed the thing's
        executions: its next read goes to the store."""
        self._prefetched.pop(thing, None)

    def _execution(self, job_id: str, thing: str) -> Execution:
        try:
            return self._deployments.execution(job_id, thing)
        except NotFound:
            raise JobsError(ErrorCode.RESOURCE_NOT_FOUND,
                            f"job {job_id!r} has no execution on thing {thing!r}") from None

    def _document(self, job_id: str) -> dict[str, Any]:
        """The job document as delivered: placeholders replaced by fresh URLs."""
        stored = self._documents.get(job_id)
        if stored is None:
            stored = dict(self._deployments.get(job_id).document)
            self._documents[job_id] = stored  # documents never change once created
        return dict(presign_document(stored, self._presign))

    def _announce(self, thing: str, before: Sequence[Execution], after: Sequence[Execution],
                  now: int, *, force_notify: bool = False) -> None:
        """notify when the pending set changed, notify-next when the next job did."""
        if force_notify or {e.deployment_id for e in before} != {e.deployment_id for e in after}:
            self._notify(thing, after, now)
        old, new = api.next_pending(before), api.next_pending(after)
        if (old.deployment_id if old else None) != (new.deployment_id if new else None):
            self._notify_next(thing, new, now)

    def _notify(self, thing: str, pending: Sequence[Execution], now: int) -> None:
        self._publish(jobs_topic(thing, "notify"), _encode(api.jobs_changed(pending, now)))

    def _notify_next(self, thing: str, execution: Execution | None, now: int) -> None:
        document = self._document(execution.deployment_id) if execution else None
        self._publish(jobs_topic(thing, "notify-next"),
                      _encode(api.next_changed(execution, document, now)))

    def _reply(self, request_topic: str, suffix: str, body: Mapping[str, Any]) -> None:
        parsed = parse_jobs_topic(request_topic)
        assert parsed is not None
        try:
            topic = jobs_topic(parsed.thing, *parsed.tail, suffix)
        except ValidationError:
            log.warning("no %s reply for %s: the reply topic would be too deep", suffix,
                        request_topic)
            return
        self._publish(topic, _encode(body))

    def _reject(self, topic: str, error: JobsError, token: str | None, now: int) -> None:
        self.rejected_by_code[error.code.value] += 1
        self._reply(topic, "rejected", api.error_response(error, token, now))

    def _quarantine_request(self, topic: str, payload: bytes, thing: str, reason: str,
                            detail: str) -> None:
        if self.quarantine is None:
            return
        try:
            self.quarantine([QuarantinedMessage(topic, reason[:64], detail, bytes(payload),
                                                thing, utcnow())])
        except Exception:  # noqa: BLE001 - the answer went out; the row is only diagnosis
            log.warning("could not quarantine a refused jobs request from %s", thing)

    def _finished(self, executions: Sequence[Execution]) -> None:
        if self.on_terminal is None:
            return
        for execution in executions:
            try:
                self.on_terminal(execution)
            except Exception:
                log.exception("rollout check after %s on %s failed", execution.deployment_id,
                              execution.device_id)

    def snapshot(self) -> dict[str, Any]:
        return {"accepted_by_api": dict(self.accepted_by_api),
                "rejected_by_code": dict(self.rejected_by_code),
                "step_timers": len(self._step_deadlines)}


def is_store_error(exc: BaseException) -> bool:
    """Errors of the database layer (SQLAlchemy's or the driver's), by module, so
    this module needs no database import: they mean "try again later", not a
    bad request."""
    return any(type(e).__module__.split(".")[0] in ("sqlalchemy", "psycopg", "psycopg2",
                                                   "sqlite3")
               for e in (exc, exc.__cause__, exc.__context__) if e is not None)
