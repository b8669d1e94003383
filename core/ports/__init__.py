"""Ports: what the feature plugins need from a backend, as ABCs.

Both backends (local MQTT hub and AWS) implement these, so the pages never
know which one they are talking to.
"""

from core.ports.alerts import AlertQuery, AlertStore
from core.ports.backend import Backend
from core.ports.commands import CommandChannel, CommandOutcome, CommandResult
from core.ports.deployments import DeploymentService
from core.ports.firmware import FirmwareRepository
from core.ports.hub import (
    AlertRuleStore,
    AuditTrail,
    CommandLog,
    LinkStatsStore,
    QuarantineStore,
    ShadowStore,
)
from core.ports.live import FleetEvent, LiveFeed
from core.ports.registry import DeviceQuery, DeviceRegistry
from core.ports.shadows import ShadowDocument, ShadowService
from core.ports.telemetry import Series, TelemetryStore

__all__ = [
    "AlertQuery",
    "AlertRuleStore",
    "AlertStore",
    "AuditTrail",
    "Backend",
    "CommandChannel",
    "CommandLog",
    "CommandOutcome",
    "CommandResult",
    "DeploymentService",
    "DeviceQuery",
    "DeviceRegistry",
    "FirmwareRepository",
    "FleetEvent",
    "LinkStatsStore",
    "LiveFeed",
    "QuarantineStore",
    "Series",
    "ShadowDocument",
    "ShadowService",
    "ShadowStore",
    "TelemetryStore",
]
