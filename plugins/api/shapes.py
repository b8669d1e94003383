"""Domain objects as the API's JSON. Times are ISO 8601 in UTC."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from core.model import Alert, Deployment, Device, Firmware
from core.model.rule import AlertRule
from core.ports.preferences import Preferences
from core.ports.shadows import ShadowDocument
from core.ports.telemetry import Series


def _t(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def device(d: Device) -> dict[str, Any]:
    return {
        "device_id": d.device_id, "name": d.name, "device_type": d.device_type,
        "status": d.status.value, "organization": d.organization,
        "firmware_version": d.firmware_version or "", "tags": sorted(d.tags),
        "location": None if d.location is None else {
            "latitude": d.location.latitude, "longitude": d.location.longitude,
            "label": d.location.label},
        "metadata": d.metadata, "last_seen": _t(d.last_seen),
        "created_at": _t(d.created_at), "updated_at": _t(d.updated_at),
        "version": d.version,
    }


def alert(a: Alert) -> dict[str, Any]:
    return {
        "alert_id": a.alert_id, "device_id": a.device_id, "rule_id": a.rule_id,
        "severity": a.severity.value, "state": a.state.value, "message": a.message,
        "value": a.value, "created_at": _t(a.created_at), "updated_at": _t(a.updated_at),
        "acknowledged_at": _t(a.acknowledged_at), "acknowledged_by": a.acknowledged_by,
        "ack_comment": a.ack_comment, "resolved_at": _t(a.resolved_at),
        "resolved_by": a.resolved_by, "resolve_comment": a.resolve_comment,
        "snoozed_until": _t(a.snoozed_until), "version": a.version,
    }


def rule(r: AlertRule) -> dict[str, Any]:
    return {
        "rule_id": r.rule_id, "name": r.name, "rule_type": r.rule_type, "params": r.params,
        "severity": r.severity.value, "enabled": r.enabled, "auto_resolve": r.auto_resolve,
        "scope": {"device_types": sorted(r.scope.device_types), "tags": sorted(r.scope.tags),
                  "device_ids": sorted(r.scope.device_ids),
                  "organizations": sorted(r.scope.organizations)},
        "version": r.version, "updated_at": _t(r.updated_at),
    }


def shadow(s: ShadowDocument) -> dict[str, Any]:
    return {"device_id": s.device_id, "desired": s.desired, "reported": s.reported,
            "delta": s.delta, "version": s.version}


def series(s: Series) -> dict[str, Any]:
    out: dict[str, Any] = {"device_id": s.device_id, "metric": s.metric,
                           "bucket_s": None if s.bucket_ms is None else s.bucket_ms / 1000,
                           "ts_ms": s.ts_ms.tolist(), "value": s.value.tolist()}
    if s.minimum is not None and s.maximum is not None:
        out["minimum"] = s.minimum.tolist()
        out["maximum"] = s.maximum.tolist()
    if s.count is not None:
        out["count"] = s.count.tolist()
    return out


def firmware(f: Firmware) -> dict[str, Any]:
    # the signature (base64; null when unsigned) travels with the key id, so a console
    # on the API shows an image signed, and can check it, as one on the store does
    return {"firmware_id": f.firmware_id, "device_type": f.device_type,
            "version": str(f.version), "size": f.size, "sha256": f.sha256,
            "key_id": f.key_id, "release_notes": f.release_notes,
            "signature": None if f.signature is None
            else base64.b64encode(f.signature).decode("ascii")}


def deployment(d: Deployment, counts: dict[str, int] | None = None) -> dict[str, Any]:
    out = {"deployment_id": d.deployment_id, "firmware_id": d.firmware_id,
           "status": d.status.value, "targets": list(d.targets), "created_by": d.created_by,
           "description": d.description, "reason": d.reason, "target_spec": d.target_spec,
           "config": d.config.to_aws(), "created_at": _t(d.created_at),
           "updated_at": _t(d.updated_at)}
    if counts is not None:
        out["executions"] = counts
    return out


def preferences(p: Preferences) -> dict[str, Any]:
    return {"user": p.user, "preferences": p.values, "version": p.version}
