"""The hub's side of the shadow topics: answer get/update/delete for every thing.

Requests are handled on the writer thread (they touch the store) under one
lock, so a device's update and a console's desired-state change are applied
one after the other with IoT Core's version rules.

Whatever a request contains, it is answered: a payload that cannot be read
(not JSON, not UTF-8, nested past any sense, numbers no store can hold, over
128 KB) gets ``/rejected`` with IoT Core's code and message, is counted by
reason and quarantined, and the next request is handled as if nothing
happened. Only the store's own failures propagate, so the hub can keep the
request until the database is back.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.errors import ConcurrentModification
from core.model.events import FleetEvent, MessageRejected, ShadowChanged
from core.model.link import QuarantinedMessage
from core.model.timeutil import utcnow
from core.ports.hub import ShadowStore
from core.ports.shadows import ShadowDocument
from core.protocol.payloads import ProtocolError, decode_json_object
from core.protocol.topics import ShadowOp, parse_shadow_topic, shadow_topic
from core.store.schema import ShadowRow
from core.store.shadows import _to_domain as shadow_from_row
from plugins.local.hub.shadow_engine import (
    INTERNAL,
    INVALID_JSON,
    NOT_UTF8,
    TOO_DEEP,
    TOO_LARGE,
    Outcome,
    handle_delete,
    handle_get,
    handle_update,
    rejected,
)

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], None]
# Many devices' shadows in one read: every id asked for is in the answer (None: no shadow).
GetMany = Callable[[Sequence[str]], dict[str, ShadowDocument | None]]
Quarantine = Callable[[Sequence[QuarantinedMessage]], None]

# decode failures (ProtocolError.reason) -> IoT Core's answer
_DECODE_ERRORS = {
    "oversized": TOO_LARGE,
    "too_deep": TOO_DEEP,
    "invalid_encoding": NOT_UTF8,
}


class ShadowHost:
    def __init__(self, store: ShadowStore, publish: Publish, *,
                 quarantine: Quarantine | None = None,
                 get_many: GetMany | None = None) -> None:
        self._store = store
        # Shadows read for a drain's gets in one query (``prefetch``). Only gets
        # are answered from it, and only within the drain: an update or delete
        # reads the stored document itself (its save is conditional on that
        # version) and drops the thing's entry, so nothing here can answer a
        # get with a document older than the per-request read would have.
        self._get_many = get_many
        self._prefetched: dict[str, ShadowDocument | None] = {}
        self._publish = publish
        self._quarantine = quarantine
        self._lock = threading.Lock()
        self.rejected_by_reason: Counter[str] = Counter()
        # requests answered, by operation (get/update/delete)
        self.answered: Counter[str] = Counter()

    def prefetch(self, things: Sequence[str]) -> int:
        """Read the shadows of ``things`` (the drain's gets) in one query;
        returns how many were read. Without a batch reader it does nothing."""
        if self._get_many is None or not things:
            return 0
        with self._lock:
            wanted = [t for t in dict.fromkeys(things) if t not in self._prefetched]
            if wanted:
                self._prefetched.update(self._get_many(wanted))
            return len(wanted)

    def forget_prefetched(self) -> None:
        """End of a drain: others (a console's desired state) may write from now on."""
        with self._lock:
            self._prefetched.clear()

    def handle(self, topic: str, payload: bytes, now_s: int) -> list[FleetEvent]:
        parsed = parse_shadow_topic(topic)
        if parsed is None or parsed.suffix:
            return []  # our own replies (accepted/rejected/delta/documents) come back too
        thing = parsed.thing
        with self._lock:
            try:
                request = decode_json_object(
                    payload, f"shadow {parsed.op.value} for {thing}", document=True,
                ) if payload.strip() else {}
            except ProtocolError as exc:
                error = _DECODE_ERRORS.get(exc.reason, INVALID_JSON)
                self._send(thing, parsed.op, rejected(error, None, now_s), detail=str(exc))
                return self._refused(topic, payload, thing, exc.reason, str(exc))
            # An update naming a version is judged on a fresh read: a stale one
            # would refuse it (409) where the stored document accepts it.
            prefetched = thing in self._prefetched and (
                parsed.op is ShadowOp.GET
                or (parsed.op is ShadowOp.UPDATE and "version" not in request))
            if prefetched:
                current = self._prefetched[thing]
            else:
                self._prefetched.pop(thing, None)
                current = self._store.get(thing)
            try:
                outcome = self._answer(thing, parsed.op, current, request, now_s,
                                       prefetched=prefetched)
            except ConcurrentModification:
                raise
            except Exception as exc:  # a request must never stop the hub
                if _is_store_error(exc):
                    raise  # the hub keeps the request until the database is back
                log.exception("shadow %s for %s failed", parsed.op.value, thing)
                self._send(thing, parsed.op, rejected(INTERNAL, None, now_s))
                return self._refused(topic, payload, thing, "internal_error",
                                     f"{type(exc).__name__}: {exc}")
            self._send(thing, parsed.op, outcome)
            self.answered[parsed.op.value] += 1
        if outcome.replies and outcome.replies[0].suffix == "rejected":
            self.rejected_by_reason[str(outcome.replies[0].body.get("code"))] += 1
        if outcome.document is not None or outcome.deleted:
            document = outcome.document or ShadowDocument(thing)
            return [ShadowChanged(document)]
        return []

    def _answer(self, thing: str, op: ShadowOp, current: ShadowDocument | None,
                request: dict[str, object], now_s: int, *, prefetched: bool = False) -> Outcome:
        if op is ShadowOp.GET:
            return handle_get(current, {**request, "_thing": thing}, now_s)
        if op is ShadowOp.DELETE:
            outcome = handle_delete(current, {**request, "_thing": thing}, now_s)
            if outcome.deleted:
                self._store.delete(thing)
            return outcome
        request.pop("_thing", None)
        outcome = handle_update(thing, current, request, now_s)
        if outcome.document is not None:
            try:
                self._store.save(outcome.document,
                                 expected_version=None if current is None else current.version)
            except ConcurrentModification:
                self._prefetched.pop(thing, None)
                if prefetched:
                    # the drain's read was overtaken (a console wrote meanwhile):
                    # judge the request against the stored document, as before
                    return self._answer(thing, op, self._store.get(thing), request, now_s)
                outcome = handle_update(thing, current, {**request, "version": -1}, now_s)
                return outcome
            if thing in self._prefetched:
                self._prefetched[thing] = outcome.document  # what is stored now
        return outcome

    def _refused(self, topic: str, payload: bytes, thing: str, reason: str,
                 detail: str) -> list[FleetEvent]:
        """Counted and quarantined; the answer went out already."""
        self.rejected_by_reason[reason] += 1
        message = QuarantinedMessage(topic, f"shadow_{reason}"[:64], detail, bytes(payload),
                                     thing, utcnow())
        if self._quarantine is not None:
            try:
                self._quarantine([message])
            except Exception:  # noqa: BLE001 - the answer went out; the row is only diagnosis
                log.warning("could not quarantine a refused shadow request for %s", thing)
        return [MessageRejected(message)]

    def _send(self, thing: str, op: ShadowOp, outcome: Outcome, *, detail: str = "") -> None:
        for reply in outcome.replies:
            body = dict(reply.body)
            if detail and reply.suffix == "rejected":
                body["message"] = f"{body['message']}: {detail[:512]}"
            suffix_op = ShadowOp.UPDATE if reply.suffix in ("delta", "documents") else op
            self._publish(shadow_topic(thing, suffix_op, reply.suffix),
                          json.dumps(body, separators=(",", ":")).encode())


def _is_store_error(exc: BaseException) -> bool:
    """Errors of the database layer (SQLAlchemy's, or the driver's), by module,
    so this module needs no database import."""
    return any(type(e).__module__.split(".")[0] in ("sqlalchemy", "psycopg", "psycopg2",
                                                   "sqlite3")
               for e in (exc, exc.__cause__, exc.__context__) if e is not None)


def shadows_many(engine: Engine) -> GetMany:
    """One query (per 900 ids) for many devices' shadows, the store's own
    conversion to documents."""
    def read(device_ids: Sequence[str]) -> dict[str, ShadowDocument | None]:
        ids = list(dict.fromkeys(device_ids))
        out: dict[str, ShadowDocument | None] = dict.fromkeys(ids)
        with Session(engine) as session:
            for start in range(0, len(ids), 900):
                stmt = select(ShadowRow).where(ShadowRow.device_id.in_(ids[start:start + 900]))
                for row in session.scalars(stmt):
                    out[row.device_id] = shadow_from_row(row)
        return out

    return read
