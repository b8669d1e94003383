"""The in-process FleetApi: this process's services, bound to one person.

Each area's session class lives beside its service (``core/services/<area>``)
and only adds the Actor to every call, so a page and a REST handler reach
exactly the same checks, organization scope and audit entries.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from core.model.roles import Actor
from core.services.wiring import Services

if TYPE_CHECKING:
    from core.ports.fleet_api import (
        AlertsApi,
        AnalyticsApi,
        AuditApi,
        DeploymentsApi,
        DevicesApi,
        FirmwareApi,
        UsersApi,
    )


class LocalFleetApi:
    def __init__(self, services: Services, actor: Actor) -> None:
        self._services = services
        self._actor = actor

    @property
    def actor(self) -> Actor:
        return self._actor

    @property
    def services(self) -> Services:
        """For tests and the REST wiring; front ends use the area properties."""
        return self._services

    @cached_property
    def devices(self) -> DevicesApi:
        from core.services.devices import DevicesSession
        return DevicesSession(self._services, self._actor)

    @cached_property
    def alerts(self) -> AlertsApi:
        from core.services.alerting.service import AlertsSession
        return AlertsSession(self._services, self._actor)

    @cached_property
    def firmware(self) -> FirmwareApi:
        from core.services.firmware import FirmwareSession
        return FirmwareSession(self._services, self._actor)

    @cached_property
    def deployments(self) -> DeploymentsApi:
        from core.services.ota import DeploymentsSession
        return DeploymentsSession(self._services, self._actor)

    @cached_property
    def analytics(self) -> AnalyticsApi:
        from core.services.analytics import AnalyticsSession
        return AnalyticsSession(self._services, self._actor)

    @cached_property
    def users(self) -> UsersApi:
        from core.services.users import UsersSession
        return UsersSession(self._services, self._actor)

    @cached_property
    def audit(self) -> AuditApi:
        from core.services.audit import AuditSession
        return AuditSession(self._services, self._actor)
