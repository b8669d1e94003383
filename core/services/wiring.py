"""One function builds the use cases over a backend's ports, so the Qt pages,
the CLI and tests get the same services with the same checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from core.ports.audit import AuditReader
from core.ports.backend import Backend
from core.services.alerting.service import AlertService
from core.services.audit import AuditService
from core.services.devices import DeviceService


@dataclass(frozen=True, slots=True)
class Services:
    devices: DeviceService
    alerts: AlertService
    audit: AuditService


def build_services(backend: Backend) -> Services:
    trail = backend.audit
    reader = cast(AuditReader, trail) if hasattr(trail, "check") else None
    return Services(
        devices=DeviceService(backend.registry, backend.audit, commands=backend.commands,
                              shadows=backend.shadows),
        alerts=AlertService(backend.alerts, backend.audit, rules=backend.rules),
        audit=AuditService(reader),
    )
