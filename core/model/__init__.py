"""Entities and value objects of the fleet domain (no I/O, no frameworks)."""

from core.model.alert import Alert, AlertEvent, AlertEventKind, AlertState, Severity, history_of
from core.model.deployment import (
    LEGAL_TRANSITIONS,
    Deployment,
    DeploymentStatus,
    Execution,
    ExecutionStatus,
)
from core.model.device import Device, DeviceStatus, Location
from core.model.firmware import Firmware
from core.model.ids import is_valid_device_id, validate_device_id
from core.model.link import CommandRecord, CommandStatus, LinkStats, QuarantinedMessage
from core.model.reading import Reading, keep_newest, validate_metric
from core.model.rule import AlertRule, RuleScope
from core.model.semver import SemVer

__all__ = [
    "LEGAL_TRANSITIONS",
    "Alert",
    "AlertEvent",
    "AlertEventKind",
    "AlertRule",
    "AlertState",
    "CommandRecord",
    "CommandStatus",
    "Deployment",
    "DeploymentStatus",
    "Device",
    "DeviceStatus",
    "Execution",
    "ExecutionStatus",
    "Firmware",
    "LinkStats",
    "Location",
    "QuarantinedMessage",
    "Reading",
    "RuleScope",
    "SemVer",
    "Severity",
    "history_of",
    "is_valid_device_id",
    "keep_newest",
    "validate_device_id",
    "validate_metric",
]
