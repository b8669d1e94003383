"""The API's JSON (plugins/api/shapes.py) back into the domain objects a local
session returns, so a page cannot tell which implementation answered."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import numpy as np

from core.model import (
    Alert,
    AlertState,
    Deployment,
    Device,
    DeviceStatus,
    Firmware,
    Location,
    Severity,
)
from core.model.analytics import (
    AlertMark,
    DeviceLocations,
    FleetDashboard,
    FleetOverview,
    FleetStatistics,
    History,
    HistoryRequest,
    ThresholdLine,
)
from core.model.deployment import DeploymentStatus, Execution, ExecutionStatus
from core.model.link import QuarantinedMessage
from core.model.roles import Role
from core.model.rollout import JobConfig
from core.model.rule import AlertRule, RuleScope
from core.model.users import UserAccount
from core.ports.audit import AuditEntry, AuditReport
from core.ports.commands import CommandOutcome, CommandResult
from core.ports.fleet_api.deployments import DeploymentProgress, TargetPlan
from core.ports.fleet_api.firmware import VerifyReport
from core.ports.preferences import Preferences
from core.ports.shadows import ShadowDocument
from core.ports.signing_keys import TrustedKey
from core.ports.telemetry import Series


def when(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) and text else None


def _at(text: Any) -> datetime:
    value = when(text)
    if value is None:
        raise ValueError(f"the server sent no time where one is required ({text!r})")
    return value


def device(d: dict[str, Any]) -> Device:
    loc = d.get("location")
    return Device(
        d["device_id"], name=d.get("name", ""), device_type=d.get("device_type", "generic"),
        status=DeviceStatus(d.get("status", "offline")),
        organization=d.get("organization", "default"),
        location=None if not loc else Location(loc["latitude"], loc["longitude"],
                                               loc.get("label", "")),
        firmware_version=d.get("firmware_version") or None,
        tags=frozenset(d.get("tags") or ()), metadata=dict(d.get("metadata") or {}),
        created_at=_at(d["created_at"]), updated_at=_at(d["updated_at"]),
        last_seen=when(d.get("last_seen")), version=int(d.get("version") or 0))


def alert(a: dict[str, Any]) -> Alert:
    return Alert(
        a["device_id"], a["rule_id"], Severity(a["severity"]), a.get("message", ""),
        value=a.get("value"), alert_id=a["alert_id"], state=AlertState(a["state"]),
        created_at=_at(a["created_at"]), updated_at=_at(a["updated_at"]),
        acknowledged_at=when(a.get("acknowledged_at")),
        acknowledged_by=a.get("acknowledged_by"), ack_comment=a.get("ack_comment"),
        resolved_at=when(a.get("resolved_at")), resolved_by=a.get("resolved_by"),
        snoozed_until=when(a.get("snoozed_until")), version=int(a.get("version") or 1),
        resolve_comment=a.get("resolve_comment"))


def rule(r: dict[str, Any]) -> AlertRule:
    scope = r.get("scope") or {}
    return AlertRule(
        name=r["name"], rule_type=r["rule_type"], params=dict(r.get("params") or {}),
        severity=Severity(r.get("severity", "warning")),
        scope=RuleScope(device_types=frozenset(scope.get("device_types") or ()),
                        tags=frozenset(scope.get("tags") or ()),
                        device_ids=frozenset(scope.get("device_ids") or ()),
                        organizations=frozenset(scope.get("organizations") or ())),
        enabled=bool(r.get("enabled", True)), auto_resolve=bool(r.get("auto_resolve", True)),
        rule_id=r["rule_id"], updated_at=_at(r["updated_at"]),
        version=int(r.get("version") or 1))


def trusted_key(k: dict[str, Any]) -> TrustedKey:
    return TrustedKey(k["key_id"], k["owner"], str(k["public_pem"]).encode("ascii"),
                      k["added_by"], _at(k["added_at"]), revoked_by=k.get("revoked_by"),
                      revoked_at=when(k.get("revoked_at")), note=k.get("note") or "")


def quarantined(m: dict[str, Any]) -> QuarantinedMessage:
    return QuarantinedMessage(
        m["topic"], m["reason"], m.get("detail", ""),
        base64.b64decode(m.get("payload_base64") or ""), device_id=m.get("device_id"),
        received_at=_at(m["received_at"]), message_id=m.get("message_id"))


def shadow(s: dict[str, Any]) -> ShadowDocument:
    return ShadowDocument(s["device_id"], desired=dict(s.get("desired") or {}),
                          reported=dict(s.get("reported") or {}),
                          version=int(s.get("version") or 0))


def series(s: dict[str, Any]) -> Series:
    bucket = s.get("bucket_s")
    return Series(
        s["device_id"], s["metric"], np.asarray(s.get("ts_ms") or [], dtype=np.int64),
        np.asarray(s.get("value") or [], dtype=np.float64),
        minimum=None if "minimum" not in s else np.asarray(s["minimum"], dtype=np.float64),
        maximum=None if "maximum" not in s else np.asarray(s["maximum"], dtype=np.float64),
        count=None if "count" not in s else np.asarray(s["count"], dtype=np.int64),
        bucket_ms=None if bucket is None else round(float(bucket) * 1000))


def firmware(f: dict[str, Any]) -> Firmware:
    signature = f.get("signature")
    return Firmware(f["version"], f["device_type"], int(f["size"]), f["sha256"],
                    signature=None if signature is None else base64.b64decode(signature),
                    key_id=f.get("key_id", ""), release_notes=f.get("release_notes", ""),
                    created_at=_at(f["created_at"]))


def verify_report(r: dict[str, Any]) -> VerifyReport:
    return VerifyReport(r["firmware_id"], bool(r["sha256_ok"]), bool(r["signature_ok"]),
                        bool(r["key_trusted"]), str(r.get("message", "")),
                        tuple(r.get("trusted_keys") or ()))


def deployment(d: dict[str, Any]) -> Deployment:
    return Deployment(
        firmware_id=d["firmware_id"], targets=tuple(d.get("targets") or ()),
        deployment_id=d["deployment_id"], status=DeploymentStatus(d["status"]),
        created_by=d.get("created_by", ""), config=JobConfig.from_aws(d.get("config") or {}),
        target_spec=dict(d.get("target_spec") or {}), reason=d.get("reason", ""),
        description=d.get("description", ""), created_at=_at(d["created_at"]),
        updated_at=_at(d["updated_at"]))


def execution(e: dict[str, Any]) -> Execution:
    return Execution(e["deployment_id"], e["device_id"], ExecutionStatus(e["status"]),
                     int(e.get("version_number") or 1), dict(e.get("status_details") or {}),
                     int(e.get("execution_number") or 1), _at(e["queued_at"]),
                     when(e.get("started_at")), _at(e["updated_at"]))


def progress(d: dict[str, Any]) -> DeploymentProgress:
    # a server from before can_pause could pause (the hub) or refused after the click
    return DeploymentProgress(deployment(d), dict(d.get("executions") or {}),
                              bool(d.get("can_pause", True)))


def plan(p: dict[str, Any]) -> TargetPlan:
    return TargetPlan(tuple(p.get("targets") or ()),
                      {s["reason"]: tuple(s.get("device_ids") or ()) for s in p.get("skipped")
                       or ()})


def dashboard(d: dict[str, Any]) -> FleetDashboard:
    stats = FleetStatistics(total=int(d.get("total", 0)), online=int(d.get("online", 0)),
                            offline=int(d.get("offline", 0)), warning=int(d.get("warning", 0)),
                            error=int(d.get("error", 0)), by_type=dict(d.get("by_type") or {}))
    return FleetDashboard(stats, open_alerts=int(d.get("open_alerts", 0)),
                          alerts_by_severity=dict(d.get("alerts_by_severity") or {}))


def overview(d: dict[str, Any]) -> FleetOverview:
    stats = d["stats"]
    loc = d.get("locations")
    return FleetOverview(
        stats=FleetStatistics(total=int(stats.get("total", 0)), online=int(stats.get("online", 0)),
                              offline=int(stats.get("offline", 0)),
                              warning=int(stats.get("warning", 0)),
                              error=int(stats.get("error", 0)),
                              decommissioned=int(stats.get("decommissioned", 0)),
                              by_type=dict(stats.get("by_type") or {})),
        since=_at(d["since"]),
        online_ts_ms=np.asarray(d.get("online_ts_ms") or [], dtype=np.int64),
        online_count=np.asarray(d.get("online_count") or [], dtype=np.int64),
        online_note=str(d.get("online_note", "")),
        hour_start_ms=np.asarray(d.get("hour_start_ms") or [], dtype=np.int64),
        alerts_per_hour={k: np.asarray(v, dtype=np.int64)
                         for k, v in (d.get("alerts_per_hour") or {}).items()},
        firmware=[(str(n), int(c)) for n, c in d.get("firmware") or ()],
        top_metric=str(d.get("top_metric", "")),
        top=[(str(i), float(v)) for i, v in d.get("top") or ()],
        metrics=list(d.get("metrics") or ()),
        locations=None if not loc else DeviceLocations(
            list(loc["device_id"]), np.asarray(loc["latitude"], dtype=np.float64),
            np.asarray(loc["longitude"], dtype=np.float64), list(loc["status"])))


def threshold(t: dict[str, Any]) -> ThresholdLine:
    return ThresholdLine(str(t["rule_id"]), str(t["name"]), str(t["metric"]),
                         float(t["limit"]), str(t["op"]), str(t["severity"]))


def history(request: HistoryRequest, d: dict[str, Any]) -> History:
    return History(request, [series(s) for s in d.get("series") or ()],
                   [threshold(t) for t in d.get("thresholds") or ()],
                   [AlertMark(str(m["device_id"]), int(m["ts_ms"]), str(m["severity"]),
                              str(m.get("message", ""))) for m in d.get("marks") or ()])


def preferences(p: dict[str, Any]) -> Preferences:
    return Preferences(p["user"], dict(p.get("preferences") or {}), int(p.get("version") or 0))


def user(u: dict[str, Any]) -> UserAccount:
    return UserAccount(u["name"], Role(u["role"]), u.get("organization", ""),
                       bool(u.get("disabled", False)), u.get("created_by", ""),
                       when(u.get("created_at")), u.get("updated_by", ""),
                       when(u.get("updated_at")), int(u.get("version") or 1))


def audit_entry(e: dict[str, Any]) -> AuditEntry:
    return AuditEntry(int(e["seq"]), _at(e["ts"]), e["actor"], e["action"], e["subject"],
                      dict(e.get("details") or {}), e.get("prev_hash", ""), e.get("hash", ""))


def audit_report(r: dict[str, Any]) -> AuditReport:
    return AuditReport(int(r["entries"]), int(r["head_seq"]), str(r["head_hash"]),
                       int(r["checkpoints"]), r.get("first_bad_seq"),
                       tuple(r.get("problems") or ()), bool(r.get("signatures_checked", True)),
                       int(r.get("pending", 0)))


def command_result(r: dict[str, Any]) -> CommandResult:
    return CommandResult(r.get("request_id", ""), r["device_id"], r["command"],
                         CommandOutcome(r["outcome"]), dict(r.get("result") or {}),
                         r.get("latency_ms"))
