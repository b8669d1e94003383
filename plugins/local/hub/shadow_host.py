"""The hub's side of the shadow topics: answer get/update/delete for every thing.

Requests are handled on the writer thread (they touch the store) under one
lock, so a device's update and a console's desired-state change are applied
one after the other with IoT Core's version rules.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from core.errors import ConcurrentModification
from core.ports.hub import ShadowStore
from core.ports.live import EventKind, FleetEvent
from core.ports.shadows import ShadowDocument
from core.protocol.payloads import ProtocolError, decode_json_object
from core.protocol.topics import ShadowOp, parse_shadow_topic, shadow_topic
from plugins.local.hub.shadow_engine import Outcome, handle_delete, handle_get, handle_update

Publish = Callable[[str, bytes], None]


class ShadowHost:
    def __init__(self, store: ShadowStore, publish: Publish) -> None:
        self._store = store
        self._publish = publish
        self._lock = threading.Lock()

    def handle(self, topic: str, payload: bytes, now_s: int) -> list[FleetEvent]:
        parsed = parse_shadow_topic(topic)
        if parsed is None or parsed.suffix:
            return []  # our own replies (accepted/rejected/delta/documents) come back too
        thing = parsed.thing
        with self._lock:
            current = self._store.get(thing)
            try:
                request = decode_json_object(payload, f"shadow {parsed.op.value} for {thing}") \
                    if payload.strip() else {}
            except ProtocolError as exc:
                outcome = handle_update(thing, current, None, now_s)
                self._send(thing, parsed.op, outcome, detail=str(exc))
                return []
            request.setdefault("_thing", thing)
            if parsed.op is ShadowOp.GET:
                outcome = handle_get(current, request, now_s)
            elif parsed.op is ShadowOp.DELETE:
                outcome = handle_delete(current, request, now_s)
                if outcome.deleted:
                    self._store.delete(thing)
            else:
                request.pop("_thing", None)
                outcome = handle_update(thing, current, request, now_s)
                if outcome.document is not None:
                    try:
                        self._store.save(outcome.document,
                                         expected_version=None if current is None
                                         else current.version)
                    except ConcurrentModification:
                        outcome = handle_update(thing, current,
                                                {**request, "version": -1}, now_s)
            self._send(thing, parsed.op, outcome)
        if outcome.document is not None or outcome.deleted:
            document = outcome.document or ShadowDocument(thing)
            return [FleetEvent(EventKind.SHADOW, thing, data={"document": document})]
        return []

    def _send(self, thing: str, op: ShadowOp, outcome: Outcome, *, detail: str = "") -> None:
        for reply in outcome.replies:
            body = dict(reply.body)
            if detail and reply.suffix == "rejected":
                body["message"] = f"{body['message']}: {detail}"
            suffix_op = ShadowOp.UPDATE if reply.suffix in ("delta", "documents") else op
            self._publish(shadow_topic(thing, suffix_op, reply.suffix),
                          json.dumps(body, separators=(",", ":")).encode())
