"""``Idempotency-Key`` on every change (POST, PUT, PATCH, DELETE): a retry of
a change is answered from the first execution instead of running it again.

A console on a poor connection does not know whether a change whose answer
was lost was applied; it resends it with the same key (its outbox keeps the
key across restarts), and this gate makes that safe:

- the first request with a key claims ``(caller, key)`` in the store (one
  conditional write), runs, and its answer is kept for 24 hours;
- a retry with the same key and the same request (method, path, query and a
  SHA-256 of the body) gets that answer back, marked ``Idempotent-Replayed:
  true``, and nothing runs twice;
- a retry while the first is still running is answered 409
  ``IDEMPOTENCY_IN_PROGRESS`` with ``Retry-After``;
- the same key with another request is refused 422 ``IDEMPOTENCY_KEY_REUSED``
  naming the key.

Answers not worth repeating are not kept (401, 429, 5xx: the retry runs
again). ``/auth/*`` is left out: its answers carry tokens, which must never be
stored. Powertools' idempotency utility was not used: it hashes the key
with the function's name into one opaque id, ties the "in progress" lease to a
Lambda's remaining time (there is none behind the hub's WSGI server), stores
whatever the handler returns (5xx included) and would need a SQL persistence
layer anyway; this gate is the same algorithm (claim, run, complete) over a
three-method port with a SQL and a DynamoDB store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from core.model.timeutil import utcnow
from core.ports.idempotency import KEEP_FOR, LEASE, IdempotencyRecord, IdempotencyStore
from plugins.api.responses import CORS_HEADERS

HEADER = "Idempotency-Key"
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY = 255
RETRY_AFTER_S = 2
_NOT_KEPT = frozenset({401, 429})
MAX_KEPT = 300_000  # characters of a stored answer

log = logging.getLogger(__name__)

Resolve = Callable[[dict[str, Any]], dict[str, Any]]


def header(event: dict[str, Any], name: str) -> str:
    """A request header whatever its case (API Gateway keeps the client's)."""
    wanted = name.lower()
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == wanted and value is not None:
            return str(value)
    return ""


def caller_of(event: dict[str, Any]) -> str:
    claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("claims") or {}
    return str(claims.get("cognito:username") or claims.get("sub") or "")


def request_line(event: dict[str, Any]) -> str:
    query = event.get("multiValueQueryStringParameters") or {}
    flat = "&".join(f"{k}={v}" for k in sorted(query) for v in query[k])
    line = f"{event.get('httpMethod', '')} {event.get('path', '')}"
    return (f"{line}?{flat}" if flat else line)[:600]


def body_hash(event: dict[str, Any]) -> str:
    return hashlib.sha256((event.get("body") or "").encode()).hexdigest()


def _answer(status: int, code: str, message: str, headers: dict[str, str] | None = None
            ) -> dict[str, Any]:
    return {"statusCode": status,
            "headers": {**CORS_HEADERS, "Content-Type": "application/json", **(headers or {})},
            "body": json.dumps({"success": False, "error": {
                "code": code, "message": message, "details": None}}),
            "isBase64Encoded": False}


class IdempotencyGate:
    """Wraps the resolver: ``gate(event, resolve)``."""

    def __init__(self, store: Callable[[], IdempotencyStore | None], *,
                 keep_for: timedelta = KEEP_FOR, lease: timedelta = LEASE) -> None:
        self._store = store
        self.keep_for = keep_for
        self.lease = lease
        self._purged_at = 0.0
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], resolve: Resolve) -> dict[str, Any]:
        key = header(event, HEADER).strip()
        method = str(event.get("httpMethod") or "").upper()
        path = str(event.get("path") or "")
        caller = caller_of(event)
        if not key or method not in CHANGES or path.startswith("/auth/") or not caller:
            return resolve(event)
        if len(key) > MAX_KEY or not key.isascii() or not key.isprintable():
            return _answer(400, "VALIDATION_ERROR",
                           f"{HEADER}: must be 1 to {MAX_KEY} printable ASCII characters "
                           "(a UUID is a good choice)")
        store = self._store()
        if store is None:
            return resolve(event)
        self._purge_now_and_then(store)
        now = utcnow()
        mine = IdempotencyRecord(caller=caller, key=key, request=request_line(event),
                                 body_hash=body_hash(event), created_at=now,
                                 expires_at=now + self.keep_for, locked_until=now + self.lease)
        held = store.claim(mine, now)
        if held is not None:
            return self._answer_held(held, mine)
        try:
            result = resolve(event)
        except BaseException:
            store.release(caller, key)
            raise
        status = int(result.get("statusCode", 500))
        if status in _NOT_KEPT or status >= 500:
            store.release(caller, key)
        else:
            kept = {k: v for k, v in result.items() if k != "multiValueHeaders"}
            kept["multiValueHeaders"] = {k: v for k, v in (result.get("multiValueHeaders")
                                                            or {}).items()
                                         if k.lower() != "x-correlation-id"}
            self._keep(store, caller, key, status, json.dumps(kept))
        return result

    @staticmethod
    def _keep(store: IdempotencyStore, caller: str, key: str, status: int, answer: str
              ) -> None:
        """Store the answer; one too big for the store (a DynamoDB item holds
        400 KB) is kept as its status with an empty body, so a retry still
        learns the change was applied, and is never run again."""
        if len(answer) > MAX_KEPT:
            answer = json.dumps({"statusCode": status, "headers": {
                **CORS_HEADERS, "Content-Type": "application/json"}, "isBase64Encoded": False,
                "body": json.dumps({"success": True, "data": None, "note": (
                    "applied; the answer was too large to keep for retries: read the "
                    "result again")})})
        try:
            store.complete(caller, key, status, answer)
        except Exception:  # the change is done: the person gets its answer anyway
            log.exception("could not keep the answer of %s for retries", key)

    def _answer_held(self, held: IdempotencyRecord, mine: IdempotencyRecord
                     ) -> dict[str, Any]:
        if held.request != mine.request or held.body_hash != mine.body_hash:
            other = "" if held.request == mine.request else f" ({held.request})"
            return _answer(422, "IDEMPOTENCY_KEY_REUSED",
                           f"{HEADER} {mine.key!r} was already used for another request"
                           f"{other}; send a new key for a new change")
        if held.in_progress or not held.response:
            return _answer(409, "IDEMPOTENCY_IN_PROGRESS",
                           f"the request with {HEADER} {mine.key!r} is still being processed;"
                           f" retry in {RETRY_AFTER_S} s for its answer",
                           {"Retry-After": str(RETRY_AFTER_S)})
        stored: dict[str, Any] = json.loads(held.response)
        headers = dict(stored.get("headers") or {})
        headers["Idempotent-Replayed"] = "true"
        stored["headers"] = headers
        return stored

    def _purge_now_and_then(self, store: IdempotencyStore) -> None:
        """Expired answers go once an hour where the store has no TTL of its own."""
        purge = getattr(store, "purge", None)
        if purge is None:
            return
        with self._lock:
            if time.monotonic() - self._purged_at < 3600 and self._purged_at:
                return
            self._purged_at = time.monotonic()
        purge(utcnow())
