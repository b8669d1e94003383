"""The AWS IoT Jobs MQTT API, device side, for one thing.

Requests: ``start-next``, ``{jobId}/get`` and ``{jobId}/update`` (with
``expectedVersion``), answers on their ``/accepted`` and ``/rejected``
topics, and ``notify-next``. Updates go one at a time, so each carries the
version the previous one produced; a rejected update (``VersionMismatch``,
``InvalidStateTransition``...) makes the client fetch the execution again and
either resend with the right version or tell the device the job is over.
Queued progress updates are coalesced: only the latest one is sent.

Every answer (``accepted``/``rejected`` of ``start-next``, ``get`` and
``update``) must carry the ``clientToken`` of a request this device sent and
is still waiting for; any other is logged and ignored. Anyone able to publish
on the device's topics could otherwise hand it an execution it never asked
for (the signed manifest is what finally decides, this keeps the device from
even looking at unsolicited documents).
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from core.protocol.topics import jobs_topic, parse_jobs_topic

log = logging.getLogger(__name__)

RESPONSE_TIMEOUT_S = 10.0   # wall seconds without an answer before a request is resent
START_NEXT_ATTEMPTS = 3
MAX_REJECTIONS = 3          # rejected updates in a row before the device gives the job up
INTERNAL_ERROR = "InternalError"  # the service could not answer now: ask again, keep the job
RETRY_MIN_S = 1.0           # first wait before asking again after an InternalError
RETRY_MAX_S = 30.0
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "REMOVED", "CANCELED"})


class JobsListener(Protocol):
    def on_notify_next(self, execution: dict[str, Any] | None) -> None: ...

    def on_started(self, execution: dict[str, Any] | None) -> None: ...

    def on_report_done(self, job_id: str) -> None: ...

    def on_job_gone(self, job_id: str) -> None: ...


@dataclass
class _Update:
    job_id: str
    status: str
    details: dict[str, str]
    token: str = ""
    rejections: int = 0
    retries: int = 0

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def _backoff(attempt: int) -> float:
    return float(min(RETRY_MAX_S, RETRY_MIN_S * 2 ** max(0, attempt - 1)))


def _object(payload: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


class JobsClient:
    def __init__(self, thing: str, publish: Callable[[str, bytes], bool],
                 call_later: Callable[[float, Callable[[], None]], None],
                 listener: JobsListener) -> None:
        self.thing = thing
        self._publish = publish
        self._call_later = call_later
        self.listener = listener
        self._tokens = itertools.count(1)
        self._tag = f"{zlib.crc32(thing.encode()):08x}"
        self.reset()

    def reset(self) -> None:
        """RAM is gone (reboot, power loss): forget requests in flight."""
        self._versions: dict[str, int] = {}
        self._queue: deque[_Update] = deque()
        self._inflight: _Update | None = None
        self._start_token = ""
        self._gets: dict[str, tuple[str, Callable[[dict[str, Any] | None], None]]] = {}
        self.generation = getattr(self, "generation", 0) + 1

    def _token(self) -> str:
        return f"{self._tag}-{secrets.token_hex(16)}"  # unguessable; 41 chars, AWS allows 64

    def _send(self, topic_tail: tuple[str, ...], body: dict[str, Any]) -> None:
        self._publish(jobs_topic(self.thing, *topic_tail),
                      json.dumps(body, separators=(",", ":")).encode())

    def _after(self, delay_s: float, action: Callable[[], None]) -> None:
        generation = self.generation
        self._call_later(delay_s, lambda: action() if generation == self.generation else None)

    # ------------------------------------------------------------------ subscriptions
    def subscriptions(self) -> list[tuple[str, int]]:
        """Seven filters: one SUBSCRIBE within AWS IoT's eight."""
        t = self.thing
        return [(jobs_topic(t, "notify-next"), 1),
                (jobs_topic(t, "start-next", "accepted"), 1),
                (jobs_topic(t, "start-next", "rejected"), 1),
                (jobs_topic(t, "+", "update", "accepted"), 1),
                (jobs_topic(t, "+", "update", "rejected"), 1),
                (jobs_topic(t, "+", "get", "accepted"), 1),
                (jobs_topic(t, "+", "get", "rejected"), 1)]

    def on_connected(self) -> None:
        if self._inflight is not None:
            self._transmit(self._inflight)

    # ------------------------------------------------------------------ requests
    def start_next(self, status_details: dict[str, str] | None = None,
                   attempts: int = 1) -> None:
        token = self._start_token = self._token()
        body: dict[str, Any] = {"clientToken": token}
        if status_details:
            body["statusDetails"] = status_details
        self._send(("start-next",), body)
        if attempts > 1:
            self._after(RESPONSE_TIMEOUT_S, lambda: self._start_again(token, status_details,
                                                                      attempts - 1))

    def _start_again(self, token: str, details: dict[str, str] | None, attempts: int) -> None:
        if self._start_token == token:  # still unanswered
            self.start_next(details, attempts)

    def describe(self, job_id: str, done: Callable[[dict[str, Any] | None], None]) -> None:
        """``{jobId}/get`` with the document (a fresh download URL) and state."""
        token = self._token()
        self._gets[job_id] = (token, done)
        self._send((job_id, "get"), {"includeJobDocument": True, "clientToken": token})

    def _describe_later(self, job_id: str, done: Callable[[dict[str, Any] | None], None],
                        attempt: int) -> None:
        log.info("%s: get of %s failed on the service's side; asking again", self.thing,
                 job_id)
        self._after(_backoff(attempt), lambda: self.describe(job_id, done))

    def update(self, job_id: str, status: str, details: dict[str, str]) -> None:
        update = _Update(job_id, status, dict(details))
        if (self._queue and not self._queue[-1].terminal and not update.terminal
                and self._queue[-1].job_id == job_id):
            self._queue[-1] = update  # progress nobody has seen yet: keep only the latest
        else:
            self._queue.append(update)
        self._pump()

    def _pump(self) -> None:
        if self._inflight is None and self._queue:
            self._inflight = self._queue.popleft()
            self._inflight.token = self._token()
            self._transmit(self._inflight)

    def _transmit(self, update: _Update) -> None:
        body: dict[str, Any] = {"status": update.status, "statusDetails": update.details,
                                "includeJobExecutionState": True,
                                "clientToken": update.token}
        version = self._versions.get(update.job_id)
        if version is not None:
            body["expectedVersion"] = version
        self._send((update.job_id, "update"), body)
        token = update.token
        self._after(RESPONSE_TIMEOUT_S, lambda: self._update_timeout(token))

    def _update_timeout(self, token: str) -> None:
        if self._inflight is not None and self._inflight.token == token:
            self._transmit(self._inflight)

    # ------------------------------------------------------------------ answers
    def on_message(self, topic: str, payload: bytes) -> bool:
        parsed = parse_jobs_topic(topic)
        if parsed is None or parsed.thing != self.thing:
            return False
        tail = parsed.tail
        doc = _object(payload)
        if tail == ("notify-next",):
            self._note_execution(doc.get("execution"))
            self.listener.on_notify_next(_execution(doc))
        elif tail[:1] == ("start-next",) and len(tail) == 2:
            token = doc.get("clientToken")
            if not self._start_token or token != self._start_token:
                self._unsolicited(topic, token)
                return True
            self._start_token = ""
            if tail[1] == "accepted":
                self._note_execution(doc.get("execution"))
                self.listener.on_started(_execution(doc))
            else:
                log.info("%s: start-next rejected: %s", self.thing, doc.get("message"))
        elif len(tail) == 3 and tail[1] == "update":
            self._update_answer(tail[0], tail[2] == "accepted", doc)
        elif len(tail) == 3 and tail[1] == "get":
            waiting = self._gets.get(tail[0])
            token = doc.get("clientToken")
            if waiting is None or token != waiting[0]:
                self._unsolicited(topic, token)
                return True
            del self._gets[tail[0]]
            if tail[2] == "rejected" and doc.get("code") == INTERNAL_ERROR:
                # the service had a problem (its database away), not "no such job"
                self._describe_later(tail[0], waiting[1], 1)
                return True
            execution = doc.get("execution") if tail[2] == "accepted" else None
            self._note_execution(execution)
            waiting[1](execution if isinstance(execution, dict) else None)
        return True

    def _unsolicited(self, topic: str, token: Any) -> None:
        """An answer to nothing this device is waiting for: a late duplicate of an
        older request, or someone else publishing on our topics."""
        if isinstance(token, str) and token.startswith(f"{self._tag}-"):
            log.debug("%s: late answer %s (%s)", self.thing, topic, token)
            return
        log.warning("%s: ignoring %s with clientToken %r: not a request this device is "
                    "waiting for", self.thing, topic, str(token)[:64])

    def _note_execution(self, execution: Any) -> None:
        if isinstance(execution, dict) and isinstance(execution.get("jobId"), str):
            version = execution.get("versionNumber")
            if isinstance(version, int):
                self._versions[execution["jobId"]] = version

    def _update_answer(self, job_id: str, accepted: bool, doc: dict[str, Any]) -> None:
        update = self._inflight
        if update is None or update.job_id != job_id or doc.get("clientToken") != update.token:
            self._unsolicited(jobs_topic(self.thing, job_id, "update",
                                         "accepted" if accepted else "rejected"),
                              doc.get("clientToken"))
            return
        if accepted:
            state = doc.get("executionState")
            version = state.get("versionNumber") if isinstance(state, dict) else None
            self._versions[job_id] = (version if isinstance(version, int)
                                      else self._versions.get(job_id, 0) + 1)
            self._inflight = None
            if update.terminal:
                self.listener.on_report_done(job_id)
            self._pump()
            return
        if doc.get("code") == INTERNAL_ERROR:
            # not a verdict on the update: the service could not process it now.
            # Sent again after a growing pause; the job stays the device's.
            update.retries += 1
            log.info("%s: update of %s failed on the service's side (%s); retrying",
                     self.thing, job_id, doc.get("message"))
            token = update.token
            self._after(_backoff(update.retries), lambda: self._update_timeout(token))
            return
        update.retries = 0
        update.rejections += 1
        log.info("%s: update of %s rejected (%s): %s", self.thing, job_id, doc.get("code"),
                 doc.get("message"))
        self.describe(job_id, lambda execution: self._after_rejection(update, execution))

    def _after_rejection(self, update: _Update, execution: dict[str, Any] | None) -> None:
        if self._inflight is not update:
            return
        status = execution.get("status") if execution else None
        if execution is None or status in TERMINAL or update.rejections >= MAX_REJECTIONS:
            # Over on the service's side (canceled, removed, already final).
            self._inflight = None
            self._queue = deque(u for u in self._queue if u.job_id != update.job_id)
            if update.terminal and status == update.status:
                self.listener.on_report_done(update.job_id)
            else:
                self.listener.on_job_gone(update.job_id)
            self._pump()
            return
        self._transmit(update)  # _note_execution has the current versionNumber


def _execution(doc: dict[str, Any]) -> dict[str, Any] | None:
    execution = doc.get("execution")
    return execution if isinstance(execution, dict) and execution.get("jobId") else None
