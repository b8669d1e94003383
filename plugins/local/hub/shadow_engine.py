"""AWS IoT classic-shadow semantics, as pure functions.

Given the stored document and a request, say what the new document is and
which replies go to which topic suffix, exactly as IoT Core answers, so
devices written with the AWS IoT Device SDK work unchanged against the hub.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.ports.shadows import ShadowDocument
from core.protocol.payloads import depth_exceeds

# IoT Core's limits on a classic shadow: the stored state (desired and reported,
# metadata excluded) at most 8 KB after every merge; at most 6 levels of nesting
# in each section; a clientToken of at most 64 bytes. The messages are IoT Core's.
MAX_STATE_BYTES = 8 * 1024
MAX_STATE_DEPTH = 6
MAX_CLIENT_TOKEN_BYTES = 64
TOO_LARGE = (413, "The payload exceeds the maximum size allowed")
TOO_DEEP = (400, "JSON contains too many levels of nesting; maximum is 6")
BAD_TOKEN = (400, "Invalid clientToken")
INVALID_JSON = (400, "Invalid JSON")
NOT_UTF8 = (415, "Unsupported documented encoding; supported encoding is UTF-8")
INTERNAL = (500, "Internal service failure")


@dataclass(frozen=True, slots=True)
class Reply:
    suffix: str  # "accepted", "rejected", "delta", "documents"
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    document: ShadowDocument | None  # new document to store (None: unchanged or deleted)
    replies: tuple[Reply, ...]
    deleted: bool = False


def _rejected(code: int, message: str, token: Any, now: int) -> Outcome:
    body: dict[str, Any] = {"code": code, "message": message, "timestamp": now}
    if token is not None:
        body["clientToken"] = token
    return Outcome(None, (Reply("rejected", body),))


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """IoT Core's merge: nested objects merge, ``null`` deletes a key."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def metadata_for(section: dict[str, Any], now: int) -> dict[str, Any]:
    return {k: metadata_for(v, now) if isinstance(v, dict) else {"timestamp": now}
            for k, v in section.items()}


def _state_bytes(desired: dict[str, Any], reported: dict[str, Any]) -> int:
    state = {k: v for k, v in (("desired", desired), ("reported", reported)) if v}
    return len(json.dumps(state, separators=(",", ":")).encode())


def token_error(token: Any) -> tuple[int, str] | None:
    if token is None:
        return None
    if not isinstance(token, str) or len(token.encode("utf-8", "replace")) > (
            MAX_CLIENT_TOKEN_BYTES):
        return BAD_TOKEN
    return None


def rejected(error: tuple[int, str], token: Any, now: int) -> Outcome:
    """A rejection with IoT Core's code and message; the token echoed only when usable."""
    return _rejected(error[0], error[1], token if token_error(token) is None else None, now)


def _with_token(body: dict[str, Any], token: Any) -> dict[str, Any]:
    if token is not None:
        body["clientToken"] = token
    return body


def _document_view(doc: ShadowDocument, now: int) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if doc.desired:
        state["desired"] = doc.desired
    if doc.reported:
        state["reported"] = doc.reported
    metadata = {name: metadata_for(section, now) for name, section in state.items()}
    return {"state": state, "metadata": metadata, "version": doc.version}


def handle_get(doc: ShadowDocument | None, request: dict[str, Any], now: int) -> Outcome:
    token = request.get("clientToken")
    if token_error(token):
        return rejected(BAD_TOKEN, None, now)
    if doc is None:
        return _rejected(404, f"No shadow exists with name: '{request.get('_thing', '')}'",
                         token, now)
    view = _document_view(doc, now)
    delta = doc.delta
    if delta:
        view["state"]["delta"] = delta
    view["timestamp"] = now
    return Outcome(None, (Reply("accepted", _with_token(view, token)),))


def handle_delete(doc: ShadowDocument | None, request: dict[str, Any], now: int) -> Outcome:
    token = request.get("clientToken")
    if token_error(token):
        return rejected(BAD_TOKEN, None, now)
    if doc is None:
        return _rejected(404, f"No shadow exists with name: '{request.get('_thing', '')}'",
                         token, now)
    body = _with_token({"version": doc.version, "timestamp": now}, token)
    return Outcome(None, (Reply("accepted", body),), deleted=True)


def handle_update(device_id: str, doc: ShadowDocument | None, request: Any,
                  now: int) -> Outcome:
    if not isinstance(request, dict):
        return _rejected(400, "Payload contains invalid json", None, now)
    token = request.get("clientToken")
    if token_error(token):
        return rejected(BAD_TOKEN, None, now)
    state = request.get("state")
    if not isinstance(state, dict) or not ({"desired", "reported"} & set(state)):
        return _rejected(400, "Missing required node: state", token, now)
    for section in ("desired", "reported"):
        if section in state and state[section] is not None and not isinstance(
                state[section], dict):
            return _rejected(400, f"State node {section} must be an object", token, now)
    if any(depth_exceeds(state.get(section), MAX_STATE_DEPTH)
           for section in ("desired", "reported")):
        return rejected(TOO_DEEP, token, now)
    if len(json.dumps(state, separators=(",", ":")).encode()) > MAX_STATE_BYTES:
        return rejected(TOO_LARGE, token, now)
    version = request.get("version")
    current_version = doc.version if doc is not None else 0
    if version is not None and (not isinstance(version, int) or version != current_version):
        return _rejected(409, "Version conflict", token, now)

    old = doc or ShadowDocument(device_id)
    desired, reported = old.desired, old.reported
    if "desired" in state:
        desired = {} if state["desired"] is None else merge(desired, state["desired"])
    if "reported" in state:
        reported = {} if state["reported"] is None else merge(reported, state["reported"])
    if _state_bytes(desired, reported) > MAX_STATE_BYTES:
        # the limit is on the stored document: small updates must not grow it past 8 KB
        return rejected(TOO_LARGE, token, now)
    new = ShadowDocument(device_id, desired, reported, current_version + 1,
                         datetime.fromtimestamp(now, UTC))

    accepted_state = {k: state[k] for k in ("desired", "reported") if k in state}
    accepted = _with_token({
        "state": accepted_state,
        "metadata": {k: metadata_for(v or {}, now) for k, v in accepted_state.items()},
        "version": new.version,
        "timestamp": now,
    }, token)
    previous = _document_view(old, now) if doc is not None else None
    documents = _with_token({"previous": previous, "current": _document_view(new, now),
                             "timestamp": now}, token)
    replies = [Reply("accepted", accepted), Reply("documents", documents)]
    delta = new.delta
    if delta and "desired" in state:
        replies.append(Reply("delta", {"version": new.version, "timestamp": now,
                                       "state": delta, "metadata": metadata_for(delta, now)}))
    return Outcome(new, tuple(replies))
