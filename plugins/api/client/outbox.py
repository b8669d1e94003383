"""The console's outbox: every change a person makes through the REST API is
written here (a SQLite file in the data directory) with an idempotency key
before the page shows it as accepted or queued, then sent; until the server
answers it is resent with the same key, with jittered exponential backoff,
across disconnects and console restarts (the file is read back at start-up).
The server's ``Idempotency-Key`` handling (plugins/api/idempotency.py) makes a
resend of something already applied answer the stored result, so each change
is applied exactly once.

What the server answers decides what happens to a queued change:

- 2xx (or the stored answer of an earlier send): done, removed;
- no answer, 5xx, 409 "still in progress": kept, sent again after a backoff
  (1 s doubling to 60 s, half of it random) or the server's ``Retry-After``;
- 429: kept, sent again after ``Retry-After``;
- 401 even after renewing the token: kept; the status says "sign in again";
- 409 (someone else changed it first) or another refusal: kept for the
  person to decide (retry on the new state, or drop); nothing is overwritten.

A change the person is waiting for (the page's call) is sent at once on the
page's worker thread: its refusal is raised there as before; when the server
cannot be reached the call raises :class:`ActionQueued` and the background
sender takes over. Tokens are never written here: the sender asks the token
source for one at each send.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ServiceUnavailable, SignInExpired, SmartIotError
from core.ports.offline import ActionState, OfflineStatus, QueuedAction
from plugins.api.client.errors import HubUnreachable, SignInRequired, error_from_answer

if TYPE_CHECKING:
    from plugins.api.client.cache import OfflineCache
    from plugins.api.client.transport import Answer, HttpTransport

log = logging.getLogger(__name__)

BASE_S = 1.0
CAP_S = 60.0
# POSTs that only read (answers computed from a body): sent directly, never queued.
_READS = re.compile(r"^/(analytics/(query|history)|firmware/deployments/plan"
                    r"|firmware/[^/]+/verify)$")
# Uploads carry up to 16 MiB: sent directly; a direct upload's steps are
# resumable by themselves (plugins/api/client/uploads.py), never queued.
_DIRECT = re.compile(r"^/(auth/.*|firmware/upload|firmware/uploads(/.*)?)$")
_IN_PROGRESS = "IDEMPOTENCY_IN_PROGRESS"
# A device command is about now: one that waited longer than this is not sent on
# its own (a reboot an hour late can be an incident too); the person decides.
COMMAND_FRESH_S = 600.0
_COMMAND = re.compile(r"^/devices/[^/]+/commands$")


class ActionQueued(SmartIotError):
    """The change is safe in the outbox and will be sent when the server answers."""


@dataclass
class _Row:
    action_id: int
    key: str
    user: str
    label: str
    method: str
    path: str
    body: Any
    headers: dict[str, str]
    timeout_s: float | None
    state: ActionState
    attempts: int
    next_at: float
    created_at: float
    message: str
    changed_by: str | None


def describe(method: str, path: str, body: Any) -> str:
    """The change in a person's words: "Acknowledge alert 3f2a…", "Reboot pump-1"."""
    parts = path.strip("/").split("/")

    def short(text: str) -> str:
        return text if len(text) <= 14 else text[:12] + "…"

    if parts[0] == "alerts" and len(parts) == 3:
        return f"{parts[2].capitalize()} alert {short(parts[1])}"
    if parts[0] == "devices" and len(parts) == 3 and parts[2] == "commands":
        command = str((body or {}).get("command") or "command") if isinstance(body, dict) \
            else "command"
        return f"{command.capitalize()} {parts[1]}"
    if parts[0] == "devices" and len(parts) == 3 and parts[2] == "shadow":
        return f"Desired state of {parts[1]}"
    if parts[0] == "devices" and len(parts) == 2:
        return {"PUT": "Edit", "DELETE": "Delete"}.get(method, "Change") + f" device {parts[1]}"
    if parts[0] == "devices" and len(parts) == 3:
        return f"{parts[2].capitalize()} device {parts[1]}"
    if parts[:2] == ["firmware", "deployments"] and len(parts) == 4:
        return f"{parts[3].capitalize()} deployment {short(parts[2])}"
    return f"{method} {path}"


def backoff(attempts: int, *, base_s: float = BASE_S, cap_s: float = CAP_S) -> float:
    """Seconds before the next try: doubling, capped, half of it random (so many
    consoles coming back at once do not all send in the same second)."""
    delay = min(cap_s, base_s * 2 ** max(0, attempts - 1))
    return float(delay / 2 + random.uniform(0, delay / 2))


class Outbox:
    def __init__(self, path: Path, transport: HttpTransport, user: Callable[[], str], *,
                 cache: OfflineCache | None = None, base_s: float = BASE_S,
                 cap_s: float = CAP_S, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        self.path = path
        self._http = transport
        self._user = user
        self._cache = cache
        self.base_s = base_s
        self.cap_s = cap_s
        self._clock = clock
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        os.chmod(path, 0o600)
        # A change is on disk before the page hears "queued": a power cut loses nothing.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS actions (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "idem_key TEXT NOT NULL UNIQUE, api TEXT NOT NULL, user TEXT NOT NULL, "
            "label TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, body TEXT, "
            "headers TEXT NOT NULL, timeout_s REAL, state TEXT NOT NULL, "
            "attempts INTEGER NOT NULL, next_at REAL NOT NULL, created_at REAL NOT NULL, "
            "message TEXT NOT NULL, changed_by TEXT)")
        # Read back at start-up: whatever waited is due now, and its backoff starts
        # over (the last run's growing delays say nothing about this network).
        self._db.execute("UPDATE actions SET next_at = ?, attempts = 0 WHERE state = ? "
                         "AND api = ?", (self._clock(), ActionState.PENDING.value, self._api))
        self._inflight: set[int] = set()
        self._closed = False
        self._problem = ""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0  # changes the server applied (or had applied) through this outbox
        self._idle = 0  # tries to reach the server before anyone could be signed in

    @property
    def _api(self) -> str:
        return self._http.base_url

    # ------------------------------------------------------------ the page's call
    def takes(self, method: str, path: str) -> bool:
        return method in ("POST", "PUT", "PATCH", "DELETE") and not _READS.match(path) \
            and not _DIRECT.match(path)

    def submit(self, method: str, path: str, body: Any, headers: Mapping[str, str] | None,
               timeout_s: float | None) -> Answer:
        """Write the change down, then send it; see the module's docstring."""
        row = self._add(method, path, body, dict(headers or {}), timeout_s)
        if self._cache is not None and self._cache.offline_since is not None:
            # Known to be offline (the last read fell back to the cache): queue at
            # once rather than make the person wait for a timeout; the sender
            # tries it right away in the background.
            with self._lock:
                self._db.execute("UPDATE actions SET next_at = ?, message = ? WHERE id = ?",
                                 (self._clock(), "queued while offline", row.action_id))
            self._wake.set()
            raise ActionQueued(f"queued — {row.label} is sent as soon as {self._api} "
                               "answers (offline)")
        with self._lock:
            self._inflight.add(row.action_id)
        try:
            outcome = self._attempt(row)
        finally:
            with self._lock:
                self._inflight.discard(row.action_id)
            self._wake.set()
        if isinstance(outcome, Exception):
            if isinstance(outcome, (ActionQueued, SignInRequired)):
                raise ActionQueued(f"queued — {row.label} {outcome}") from None
            self._delete(row.action_id)  # refused now, in front of the person
            raise outcome
        return outcome

    # ------------------------------------------------------------ one attempt
    def _attempt(self, row: _Row) -> Answer | Exception:
        """Send once and file the outcome: an Answer (done), ActionQueued (kept
        pending), SignInRequired (kept pending), or the server's refusal."""
        from plugins.api.client.transport import Answer

        headers = {**row.headers, "Idempotency-Key": row.key}
        try:
            status, payload, answer_headers = self._http.send_change(
                row.method, row.path, row.body, headers, row.timeout_s)
        except SignInExpired as exc:  # the API's, or the Cognito session's
            return self._later(row, f"sign in again to send it ({exc})", problem=(
                f"Sign in again: {self._pending_count()} queued actions wait"), delay=None)
        except HubUnreachable as exc:
            reason = str(exc).split(";")[0].rsplit(": ", 1)[-1]
            return self._later(row, f"{self._api} cannot be reached ({reason})",
                               problem=f"Waiting for {self._api}")
        except SmartIotError as exc:
            return self._later(row, str(exc), problem="")
        code = _error_code(payload)
        if 200 <= status < 300:
            self._delete(row.action_id)
            with self._lock:
                self.sent += 1
                self._problem = ""
            if self._cache is not None:
                self._cache.back_online()
            inner = payload.get("data") if isinstance(payload, dict) else payload
            return Answer(status, inner, answer_headers)
        retry_after = _retry_after(answer_headers)
        if status == 409 and code == _IN_PROGRESS:
            return self._later(row, "the server is still applying it", problem="",
                               delay=retry_after or 2.0)
        if status == 429:
            wait = retry_after or 30.0
            return self._later(row, f"the server asks to slow down; sending again in "
                               f"{wait:.0f} s", problem="", delay=wait)
        if status == 503 and code == "SERVICE_UNAVAILABLE":
            # the backend's trouble with AWS behind it (throttled, a table
            # missing...), named by the server: kept, sent again
            error = error_from_answer(status, payload, self._api)
            reason = error.reason if isinstance(error, ServiceUnavailable) else str(error)
            kept = f"{reason}; the action is kept and will be retried"
            return self._later(row, kept, problem=kept, delay=retry_after or -1.0)
        if status >= 500:
            return self._later(row, f"the server failed to answer (HTTP {status})", problem="")
        if status == 401:
            return self._later(row, "sign in again to send it", problem=(
                "Sign in again to send the queued actions"), delay=None)
        error = error_from_answer(status, payload, self._api)
        changed_by = None
        if status == 409 and isinstance(payload, dict):
            details = (payload.get("error") or {}).get("details")
            if isinstance(details, dict) and details.get("changed_by"):
                changed_by = str(details["changed_by"])
        state = ActionState.CONFLICT if status == 409 else ActionState.REFUSED
        self._settle(row.action_id, state, str(error), changed_by)
        return error

    def _later(self, row: _Row, message: str, *, problem: str,
               delay: float | None = -1.0) -> ActionQueued | SignInRequired:
        """Keep it pending. ``delay`` -1: the backoff; None: until a sign-in."""
        attempts = row.attempts + 1
        if delay is None:
            wait = 365 * 24 * 3600.0
        elif delay < 0:
            wait = backoff(attempts, base_s=self.base_s, cap_s=self.cap_s)
        else:
            wait = delay
        with self._lock:
            self._db.execute("UPDATE actions SET attempts = ?, next_at = ?, message = ? "
                             "WHERE id = ?", (attempts, self._clock() + wait, message,
                                              row.action_id))
            self._problem = problem or f"{message}; sending again automatically"
        row.attempts = attempts
        if delay is None:
            return SignInRequired(f"is sent once you sign in again ({message})")
        return ActionQueued(f"is sent as soon as the server answers ({message})")

    # ------------------------------------------------------------ background sender
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="smartiot-outbox",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def link_is_up(self) -> None:
        """A read reached the server: send what waits now, not after the backoff."""
        with self._lock:
            self._idle = 0
            woke = self._db.execute("UPDATE actions SET next_at = ? WHERE state = ? AND "
                                    "api = ? AND next_at > ? AND message NOT LIKE ?",
                                    (self._clock(), ActionState.PENDING.value, self._api,
                                     self._clock(), "sign in again%")).rowcount
        if woke:
            self._wake.set()

    def after_sign_in(self) -> None:
        """The person signed in (again): actions held for it are due."""
        with self._lock:
            self._db.execute("UPDATE actions SET next_at = ? WHERE state = ? AND api = ?",
                             (self._clock(), ActionState.PENDING.value, self._api))
            self._problem = ""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.send_due()
            except Exception:  # the sender must outlive any one fault
                log.exception("the outbox sender failed; trying again in %.0f s", self.cap_s)
                wait = self.cap_s
            self._wake.wait(max(0.05, min(wait, self.cap_s)))
            self._wake.clear()

    def send_due(self) -> float:
        """Send every due action of the signed-in person, oldest first; stops at
        the first one that finds the server away. Returns seconds to the next."""
        now = self._clock()
        for row in self._rows(ActionState.PENDING):
            if row.action_id in self._inflight or row.next_at > now:
                continue
            if _COMMAND.match(row.path) and now - row.created_at > COMMAND_FRESH_S:
                self._settle(row.action_id, ActionState.REFUSED,
                             f"not sent: it waited {int((now - row.created_at) // 60)} min "
                             "for the server, and a device command is only sent on its own "
                             f"within {int(COMMAND_FRESH_S // 60)} min; retry to send it now, "
                             "or drop it", None)
                continue
            user = self._current_user()
            if user is None:  # the server is away (or nobody can sign in): back off
                self._idle += 1
                return backoff(self._idle, base_s=self.base_s, cap_s=self.cap_s)
            self._idle = 0
            if row.user != user:
                continue  # another person's: waits for their sign-in
            with self._lock:
                self._inflight.add(row.action_id)
            try:
                outcome = self._attempt(row)
            finally:
                with self._lock:
                    self._inflight.discard(row.action_id)
            if isinstance(outcome, (ActionQueued, SignInRequired)):
                break
            log.info("outbox: %s %s", row.label,
                     "applied" if not isinstance(outcome, Exception) else
                     f"needs a decision: {outcome}")
        pending = [r.next_at for r in self._rows(ActionState.PENDING)]
        return max(0.0, min(pending) - self._clock()) if pending else self.cap_s

    def _current_user(self) -> str | None:
        """Who the tokens act for; None when nobody can be signed in now."""
        user = self._user()
        if user:
            return user
        try:
            tokens = self._http.tokens
            if tokens is None:
                return None
            tokens.access_token()  # renews from the stored refresh token
        except SignInRequired:
            with self._lock:
                self._problem = "Sign in again to send the queued actions"
            return None
        except SmartIotError:
            return None
        return self._user() or None

    # ------------------------------------------------------------ OfflineWork
    def status(self) -> OfflineStatus:
        with self._lock:
            if self._closed:  # a window of a closed session polling once more
                return OfflineStatus()
            rows = self._db.execute(
                "SELECT state, MIN(created_at), COUNT(*) FROM actions WHERE api = ? "
                "GROUP BY state", (self._api,)).fetchall()
            problem = self._problem
        pending = sum(int(n) for state, _, n in rows if state == ActionState.PENDING.value)
        oldest = min((float(t) for state, t, _ in rows if state == ActionState.PENDING.value),
                     default=None)
        decide = sum(int(n) for state, _, n in rows if state != ActionState.PENDING.value)
        offline, data_from = (False, None) if self._cache is None else \
            self._cache.offline_view()
        return OfflineStatus(pending=pending,
                             oldest=None if oldest is None else datetime.fromtimestamp(oldest,
                                                                                        UTC),
                             needs_decision=decide, problem=problem if pending else "",
                             offline=offline, data_from=data_from)

    def actions(self) -> list[QueuedAction]:
        return [QueuedAction(r.action_id, r.label, r.user, r.state,
                             datetime.fromtimestamp(r.created_at, UTC), r.attempts, r.message,
                             r.changed_by) for r in self._rows(None)]

    def retry(self, action_id: int) -> None:
        with self._lock:
            row = self._db.execute("SELECT headers FROM actions WHERE id = ?",
                                   (action_id,)).fetchone()
            if row is None:
                return
            headers = {k: v for k, v in json.loads(row[0]).items() if k.lower() != "if-match"}
            # A new key (the refused answer is stored under the old one), no
            # If-Match (the person chose their change over the new state), and
            # made "now" (a device command retried is sent now, not judged late).
            self._db.execute("UPDATE actions SET state = ?, idem_key = ?, headers = ?, "
                             "attempts = 0, next_at = ?, created_at = ?, message = ?, "
                             "changed_by = NULL WHERE id = ?",
                             (ActionState.PENDING.value, uuid.uuid4().hex, json.dumps(headers),
                              self._clock(), self._clock(),
                              "sending again on the current state", action_id))
        self._wake.set()

    def drop(self, action_id: int) -> None:
        self._delete(action_id)

    def send_now(self) -> None:
        self.after_sign_in()

    # ------------------------------------------------------------ storage
    def _add(self, method: str, path: str, body: Any, headers: dict[str, str],
             timeout_s: float | None) -> _Row:
        now = self._clock()
        key = uuid.uuid4().hex
        label = describe(method, path, body)
        user = self._user()
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO actions (idem_key, api, user, label, method, path, body, headers,"
                " timeout_s, state, attempts, next_at, created_at, message) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, '')",
                (key, self._api, user, label, method, path,
                 None if body is None else json.dumps(body, default=str), json.dumps(headers),
                 timeout_s, ActionState.PENDING.value, now + self.cap_s, now))
            action_id = int(cursor.lastrowid or 0)
        return _Row(action_id, key, user, label, method, path, body, headers, timeout_s,
                    ActionState.PENDING, 0, now, now, "", None)

    def _rows(self, state: ActionState | None) -> list[_Row]:
        if self._closed:
            return []
        # One fixed statement: a NULL state parameter means every state.
        query = ("SELECT id, idem_key, user, label, method, path, body, headers, timeout_s, "
                 "state, attempts, next_at, created_at, message, changed_by FROM actions "
                 "WHERE api = ? AND (? IS NULL OR state = ?) ORDER BY id")
        wanted = None if state is None else state.value
        with self._lock:
            found = self._db.execute(query, (self._api, wanted, wanted)).fetchall()
        return [_Row(int(r[0]), r[1], r[2], r[3], r[4], r[5],
                     None if r[6] is None else json.loads(r[6]), dict(json.loads(r[7])),
                     r[8], ActionState(r[9]), int(r[10]), float(r[11]), float(r[12]),
                     r[13], r[14]) for r in found]

    def _pending_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM actions WHERE state = ? AND "
                                        "api = ?", (ActionState.PENDING.value, self._api)
                                        ).fetchone()[0])

    def _settle(self, action_id: int, state: ActionState, message: str,
                changed_by: str | None) -> None:
        with self._lock:
            self._db.execute("UPDATE actions SET state = ?, message = ?, changed_by = ? "
                             "WHERE id = ?", (state.value, message, changed_by, action_id))

    def _delete(self, action_id: int) -> None:
        with self._lock:
            if self._closed:
                return
            self._db.execute("DELETE FROM actions WHERE id = ?", (action_id,))

    def close(self) -> None:
        self.stop()
        with self._lock:
            self._closed = True
            self._db.close()


def _error_code(payload: Any) -> str:
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return str(payload["error"].get("code") or "")
    return ""


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None
