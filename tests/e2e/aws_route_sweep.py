"""Every route of the REST API's OpenAPI document, called on the running
sandbox with bodies built from what came through the stream (the streamed
alert, the streamed devices, their shadows): each must answer 2xx, or the
answer of a gap docs/aws.md names (``GAPS``: status, error code and the words
of its entry under "## Gaps"). A route the document lists that this sweep
does not call fails the test, so a new route cannot go unchecked on AWS."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[2] / "docs" / "aws.md"

# (method, path template) -> (status, error code, words of its docs/aws.md Gaps entry)
GAPS: dict[tuple[str, str], tuple[int, str, str]] = {
    # the Cognito-hosted sign-in: the REST API on AWS keeps no passwords
    ("POST", "/auth/login"): (404, "NOT_FOUND", "`/auth/*` routes answer 404 on AWS"),
    ("POST", "/auth/logout"): (404, "NOT_FOUND", "`/auth/*` routes answer 404 on AWS"),
    ("POST", "/auth/password"): (404, "NOT_FOUND", "`/auth/*` routes answer 404 on AWS"),
    ("POST", "/auth/refresh"): (404, "NOT_FOUND", "`/auth/*` routes answer 404 on AWS"),
    ("POST", "/firmware/deployments/{deployment_id}/pause"): (
        409, "CONFLICT", "Pause and resume are refused on AWS"),
    ("POST", "/firmware/deployments/{deployment_id}/resume"): (
        409, "CONFLICT", "Pause and resume are refused on AWS"),
    # a retry needs failed devices: the sweep's one device has not failed when it asks
    ("POST", "/firmware/deployments/{deployment_id}/retry"): (
        404, "NOT_FOUND", "retry answers 404 until a device has failed"),
}


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def data(self) -> Any:
        return self.body.get("data") if isinstance(self.body, dict) else None

    @property
    def code(self) -> str:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return str(error.get("code", "")) if isinstance(error, dict) else ""


@dataclass
class Sweep:
    api_url: str
    tokens: dict[str, str]  # role -> ID token
    called: dict[tuple[str, str], Answer] = field(default_factory=dict)

    def call(self, method: str, template: str, path: str | None = None,
             body: Any = None, *, role: str = "admin", if_match: str = "",
             query: dict[str, str] | None = None) -> Answer:
        """One request; remembered under its route (``template``)."""
        target = self.api_url + (path or template)
        if query:
            target += "?" + urllib.parse.urlencode(query)
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if if_match:
            headers["If-Match"] = if_match
        request = urllib.request.Request(target, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                answer = Answer(reply.status, _json(reply.read()), dict(reply.headers))
        except urllib.error.HTTPError as error:
            answer = Answer(error.code, _json(error.read()), dict(error.headers))
        self.called.setdefault((method, template), answer)
        if not (200 <= answer.status < 300) and (method, template) not in GAPS:
            raise AssertionError(f"{method} {path or template}: {answer.status} {answer.body}")
        return answer

    def check(self, routes: set[tuple[str, str]]) -> None:
        """Every route of the document called; each answered 2xx or its gap."""
        missing = routes - set(self.called)
        assert missing == set(), f"routes the sweep never called: {sorted(missing)}"
        gaps_text = gaps_section()
        for route, (status, code, words) in GAPS.items():
            if route not in routes:
                continue
            got = self.called[route]
            assert (got.status, got.code) == (status, code), \
                f"{route}: expected the documented gap {status} {code}, got {got.status} " \
                f"{got.body}"
            assert words in gaps_text, f"{route}: docs/aws.md's Gaps do not name {words!r}"


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def gaps_section() -> str:
    text = DOCS.read_text()
    start = text.index("\n## Gaps")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def document_routes(api_url: str) -> set[tuple[str, str]]:
    with urllib.request.urlopen(api_url + "/openapi.json", timeout=15) as reply:
        doc = json.load(reply)
    return {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def etag(answer: Answer) -> str:
    return answer.headers.get("ETag", "")


def sweep(api_url: str, tokens: dict[str, str], *, alert: dict[str, Any], device: str,
          device_type: str, metric: str, keys: Any) -> Sweep:
    """``alert``: one the stream raised; ``device``: a streamed device of
    ``device_type`` reporting ``metric``; ``keys``: an engineer's code-signing
    keys (core.crypto.keystore.CodeSigningKeys) for firmware and manifests."""
    from core.crypto import codesign
    from core.model.timeutil import utcnow

    s = Sweep(api_url, tokens)
    now = utcnow()
    start = (now.replace(microsecond=0) - _hours(1)).isoformat()
    end = (now.replace(microsecond=0) + _hours(1)).isoformat()

    # ---------------------------------------------------------- reading
    for template, query in [
            ("/alerts", {}), ("/alerts/counts", {}), ("/alerts/quarantine", {}),
            ("/alerts/rules", {}), ("/analytics/dashboard", {}),
            ("/analytics/metrics", {"device_ids": device}), ("/analytics/overview", {}),
            ("/analytics/thresholds", {"metrics": metric}), ("/audit", {}),
            ("/audit/export", {}), ("/audit/verify", {}), ("/devices", {}),
            ("/devices/capabilities", {}), ("/devices/overview", {}),
            ("/devices/overview", {"limit": "50"}), ("/devices/open-alerts", {"ids": device}),
            ("/devices/records", {"ids": device}), ("/firmware", {}),
            ("/firmware/deployments", {}), ("/firmware/keys", {}), ("/users", {}),
            ("/users/me", {}), ("/users/me/preferences", {})]:
        s.call("GET", template, query=query)
    s.call("GET", "/devices/{device_id}", f"/devices/{q(device)}")
    history = s.call("GET", "/devices/{device_id}/history", f"/devices/{q(device)}/history")
    assert any(series["ts_ms"] for series in history.data["series"]), history.body
    s.call("POST", "/analytics/history", body={
        "device_ids": [device], "metrics": [metric], "start": start, "end": end})
    queried = s.call("POST", "/analytics/query", body={
        "device_ids": [device], "metric": metric, "start": start, "end": end, "bucket_s": 60})
    assert queried.data, queried.body

    # ---------------------------------------------------------- the streamed alert
    a_id = alert["alert_id"]
    a_path = f"/alerts/{q(a_id)}"
    current = s.call("GET", "/alerts/{alert_id}", a_path)
    s.call("POST", "/alerts/{alert_id}/acknowledge", f"{a_path}/acknowledge",
           {"comment": "on my way"}, role="technician", if_match=etag(current))
    s.call("POST", "/alerts/{alert_id}/snooze", f"{a_path}/snooze",
           {"minutes": 30, "comment": "waiting for the part"}, role="technician")
    resolved = s.call("POST", "/alerts/{alert_id}/resolve", f"{a_path}/resolve",
                      {"comment": "bearing replaced"}, role="technician")
    assert resolved.data["state"] == "resolved", resolved.body
    reopened = s.call("POST", "/alerts/{alert_id}/reopen", f"{a_path}/reopen",
                      {"comment": "still grinding"}, role="technician")
    assert reopened.data["state"] == "active", reopened.body

    # ---------------------------------------------------------- rules
    rules = s.call("GET", "/alerts/rules").data["items"]
    model = next(r for r in rules if r["rule_type"] == "threshold") if any(
        r["rule_type"] == "threshold" for r in rules) else rules[0]
    rule_in = {"name": "sweep rule", "rule_type": model["rule_type"],
               "params": model["params"], "severity": "warning"}
    made = s.call("POST", "/alerts/rules", body=rule_in, role="engineer")
    r_path = f"/alerts/rules/{q(made.data['rule_id'])}"
    s.call("PUT", "/alerts/rules/{rule_id}", r_path, dict(rule_in, name="sweep rule, edited"),
           role="engineer", if_match=f'"{made.data["version"]}"')
    s.call("POST", "/alerts/rules/import", body={"rules": [dict(rule_in, name="imported rule",
                                                                  rule_id="sweep-imported")]},
           role="engineer")
    s.call("DELETE", "/alerts/rules/{rule_id}", r_path, role="engineer")
    # the default set is offered to an empty rules table only: empty it, then restore them
    for rule in s.call("GET", "/alerts/rules").data["items"]:
        s.call("DELETE", "/alerts/rules/{rule_id}", f"/alerts/rules/{q(rule['rule_id'])}",
               role="engineer")
    defaults = s.call("POST", "/alerts/rules/defaults", role="engineer")
    assert defaults.data["items"], defaults.body

    # ---------------------------------------------------------- devices
    new_id = "sweep-00001"
    d_path = f"/devices/{new_id}"
    added = s.call("POST", "/devices", body={"device_id": new_id, "device_type": device_type,
                                             "name": "spare", "tags": ["spare"]},
                   role="engineer")
    edited = s.call("PUT", "/devices/{device_id}", d_path,
                    {"name": "spare pump", "location": {"latitude": 48.1, "longitude": 11.6}},
                    role="engineer", if_match=etag(added))
    retired = s.call("POST", "/devices/{device_id}/decommission", f"{d_path}/decommission",
                     role="admin", if_match=etag(edited))
    s.call("DELETE", "/devices/{device_id}", d_path, role="admin", if_match=etag(retired))
    s.call("POST", "/devices/{device_id}/commands", f"/devices/{q(device)}/commands",
           {"command": "ping", "timeout_s": 1}, role="technician")
    shadow = s.call("GET", "/devices/{device_id}/shadow", f"/devices/{q(device)}/shadow")
    s.call("PUT", "/devices/{device_id}/shadow", f"/devices/{q(device)}/shadow",
           {"desired": {"interval": 5}}, role="engineer",
           if_match=f'"{shadow.data["version"]}"')

    # ---------------------------------------------------------- users
    prefs = s.call("GET", "/users/me/preferences", role="technician")
    s.call("PUT", "/users/me/preferences", body={"preferences": {"theme": "dark"}},
           role="technician", if_match=etag(prefs))
    again = s.call("GET", "/users/me/preferences", "/users/me/preferences", role="technician")
    assert again.data["preferences"] == {"theme": "dark"}, again.body
    # one's own console's live data: the stage's IoT policy on one's Cognito identity
    access = s.call("POST", "/me/iot-access", body={}, role="technician")
    assert access.data["policy_name"].startswith("iot-console-"), access.body
    s.call("POST", "/users", body={"name": "sweep.tech", "role": "technician"})
    s.call("PUT", "/users/{name}", "/users/sweep.tech", {"role": "support"})
    s.call("PUT", "/users/{name}/password", "/users/sweep.tech/password",
           {"password": "Sweep-Passw0rd!x"})

    # ---------------------------------------------------------- signing keys and firmware
    trusted = s.call("POST", "/firmware/keys", body={
        "public_pem": keys.public_pem().decode(), "owner": "erin"})
    image = b"\x7fELF sweep image " * 64
    signing = keys.signing_key()
    fw = s.call("POST", "/firmware/upload", body={
        "device_type": device_type, "version": "9.0.0",
        "image_base64": base64.b64encode(image).decode(),
        "signature_base64": base64.b64encode(codesign.sign(signing, image)).decode()},
        role="engineer")
    fw_id = fw.data["firmware_id"]
    s.call("GET", "/firmware/{firmware_id}", f"/firmware/{q(fw_id)}")
    s.call("POST", "/firmware/{firmware_id}/verify", f"/firmware/{q(fw_id)}/verify",
           role="engineer")
    _presigned_upload(s, device_type, keys)

    # ---------------------------------------------------------- deployments
    target = {"kind": "list", "device_ids": [device]}
    s.call("POST", "/firmware/deployments/plan", body={"firmware_id": fw_id, "target": target},
           role="engineer")
    manifest = _signed_manifest(s, fw_id, keys)
    made_d = s.call("POST", "/firmware/deployments", body={
        "firmware_id": fw_id, "target": target, "description": "sweep",
        "manifest": manifest}, role="engineer")
    dep = f"/firmware/deployments/{q(made_d.data['deployment_id'])}"
    s.call("GET", "/firmware/deployments/{deployment_id}", dep)
    s.call("GET", "/firmware/deployments/{deployment_id}/executions", f"{dep}/executions")
    s.call("POST", "/firmware/deployments/{deployment_id}/pause", f"{dep}/pause",
           role="engineer")
    s.call("POST", "/firmware/deployments/{deployment_id}/resume", f"{dep}/resume",
           role="engineer")
    s.call("POST", "/firmware/deployments/{deployment_id}/retry", f"{dep}/retry",
           role="engineer")
    s.call("POST", "/firmware/deployments/{deployment_id}/cancel", f"{dep}/cancel",
           {"force": False}, role="engineer")
    s.call("DELETE", "/firmware/{firmware_id}", f"/firmware/{q(fw_id)}", role="admin")
    s.call("POST", "/firmware/keys/{key_id}/revoke",
           f"/firmware/keys/{q(trusted.data['key_id'])}/revoke")

    # ---------------------------------------------------------- sign-in on the API
    for template, body in [("/auth/login", {"username": "x", "password": "y"}),
                           ("/auth/logout", {"refresh_token": "x"}),
                           ("/auth/password", {"current_password": "x", "new_password": "y"}),
                           ("/auth/refresh", {"refresh_token": "x"})]:
        s.call("POST", template, body=body)
    return s


def _presigned_upload(s: Sweep, device_type: str, keys: Any) -> None:
    """The direct upload: start, PUT the image to the presigned URL, complete;
    and a second one started and abandoned (DELETE)."""
    from core.crypto import codesign

    image = b"\x7fELF presigned sweep image " * 64
    digest = hashlib.sha256(image)
    started = s.call("POST", "/firmware/uploads", body={
        "device_type": device_type, "version": "9.1.0", "size": len(image),
        "sha256": digest.hexdigest()}, role="engineer")
    ticket = started.data["upload"]
    (part,) = started.data["parts"]
    put = urllib.request.Request(part["url"], data=image, method="PUT", headers={
        "Content-Type": "application/octet-stream", **part["headers"]})
    with urllib.request.urlopen(put, timeout=30) as reply:
        assert reply.status == 200
    u_path = f"/firmware/uploads/{q(ticket)}"
    s.call("GET", "/firmware/uploads/{upload}", u_path, role="engineer")
    signature = codesign.sign_digest(keys.signing_key(), digest.digest())
    s.call("POST", "/firmware/uploads/{upload}/complete", f"{u_path}/complete",
           {"signature_base64": base64.b64encode(signature).decode()}, role="engineer")
    other = s.call("POST", "/firmware/uploads", body={
        "device_type": device_type, "version": "9.2.0", "size": len(image),
        "sha256": digest.hexdigest()}, role="engineer")
    s.call("DELETE", "/firmware/uploads/{upload}",
           f"/firmware/uploads/{q(other.data['upload'])}", role="engineer")


def _signed_manifest(s: Sweep, firmware_id: str, keys: Any) -> dict[str, Any]:
    """What a console signs on the engineer's machine (plugins/api/client/firmware.py)."""
    from core.protocol.ota import SignedManifest
    from core.services.ota import manifest_bytes
    from plugins.api.client import decode

    firmware = decode.firmware(s.call("GET", "/firmware/{firmware_id}",
                                      f"/firmware/{q(firmware_id)}").data)
    payload = manifest_bytes(firmware, key_id=keys.current_key_id(), issued_at=int(time.time()))
    signature, key_id = keys.sign(payload)
    manifest: dict[str, Any] = SignedManifest(payload, signature, key_id).to_json()
    return manifest


def _hours(n: int) -> Any:
    from datetime import timedelta

    return timedelta(hours=n)
