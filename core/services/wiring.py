"""One function builds the use cases over a backend's ports (cosmicpython's
``bootstrap``), so the Qt pages, the CLI, the REST handlers and tests get the
same services with the same checks. Tests pass their own ports through the
same function.

Each area adds its service here; the in-process FleetApi
(core.services.session) binds them to one person.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

from core.crypto.keystore import CodeSigningKeys
from core.ports.audit import AuditReader
from core.ports.backend import Backend
from core.registrations import AlertRuleTypeSpec
from core.services.alerting.builtin import BUILTIN_RULE_TYPES
from core.services.alerting.service import AlertService
from core.services.analytics import AnalyticsService
from core.services.audit import AuditService
from core.services.devices import DeviceService
from core.services.fleet_view import FleetView
from core.services.users import UserService


@dataclass(frozen=True)
class Services:
    backend: Backend
    devices: DeviceService
    alerts: AlertService
    audit: AuditService
    view: FleetView
    users: UserService
    analytics: AnalyticsService
    signing_keys: CodeSigningKeys | None = None
    rule_types: Mapping[str, AlertRuleTypeSpec] = field(
        default_factory=lambda: dict(BUILTIN_RULE_TYPES))


def build_services(backend: Backend, *, signing_keys: CodeSigningKeys | None = None,
                   rule_types: Mapping[str, AlertRuleTypeSpec] | None = None) -> Services:
    trail = backend.audit
    reader = cast(AuditReader, trail) if hasattr(trail, "check") else None
    return Services(
        backend=backend,
        devices=DeviceService.over(backend),
        alerts=AlertService(backend.alerts, backend.audit, rules=backend.rules,
                            registry=backend.registry, telemetry=backend.telemetry,
                            quarantine=backend.quarantine,
                            rule_types={**BUILTIN_RULE_TYPES, **(rule_types or {})}),
        audit=AuditService(reader),
        view=FleetView(backend.registry, backend.alerts, backend.telemetry,
                       deployments=backend.deployments, rules=backend.rules,
                       shadows=backend.shadows),
        users=UserService(backend.preferences, backend.audit),
        analytics=AnalyticsService(backend.registry, backend.alerts, backend.telemetry,
                                   rules=backend.rules, backend_name=backend.name),
        signing_keys=signing_keys,
        rule_types=dict(rule_types) if rule_types is not None else dict(BUILTIN_RULE_TYPES),
    )
