"""The one port every front end talks to: the use cases, for one signed-in person.

A Qt page or a CLI command never reaches a store, a broker or a service
constructor; it calls ``context.api.<area>.<use case>(...)``. In the
one-process set-up that is :class:`core.services.session.LocalFleetApi`
(the services in this process, bound to the person's Actor); in the team
set-up and on AWS it is an HTTP client of the REST API, which calls the
same services on the server. Nothing in ``console/`` or a page knows which.

The Actor is not a parameter here: a session belongs to one person, and on
the HTTP side the server takes the person from the token, never from the
request body.
"""

from __future__ import annotations

from typing import Protocol

from core.model.roles import Actor
from core.ports.fleet_api.alerts import AlertsApi
from core.ports.fleet_api.analytics import AnalyticsApi
from core.ports.fleet_api.audit import AuditApi
from core.ports.fleet_api.deployments import DeploymentsApi
from core.ports.fleet_api.devices import DevicesApi
from core.ports.fleet_api.firmware import FirmwareApi
from core.ports.fleet_api.users import UsersApi

__all__ = [
    "AlertsApi", "AnalyticsApi", "AuditApi", "DeploymentsApi", "DevicesApi", "FirmwareApi",
    "FleetApi", "UsersApi",
]


class FleetApi(Protocol):
    @property
    def actor(self) -> Actor:
        """Who this session acts for: pages grey out what the role may not do."""

    @property
    def devices(self) -> DevicesApi: ...

    @property
    def alerts(self) -> AlertsApi: ...

    @property
    def firmware(self) -> FirmwareApi: ...

    @property
    def deployments(self) -> DeploymentsApi: ...

    @property
    def analytics(self) -> AnalyticsApi: ...

    @property
    def users(self) -> UsersApi: ...

    @property
    def audit(self) -> AuditApi: ...
