"""HttpFleetApi: the FleetApi port (core.ports.fleet_api) over the REST API,
for a console in the team set-up (the hub's API) or on AWS (API Gateway).

The person, role and organization are the server's answer to
``GET /users/me``, never this machine's idea: the UI greys out from them,
and the server refuses anyway.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from core.crypto.keystore import CodeSigningKeys
from core.model.roles import Actor, Role
from plugins.api.client.alerts import HttpAlerts
from plugins.api.client.devices import HttpDevices
from plugins.api.client.firmware import HttpDeployments, HttpFirmware
from plugins.api.client.insight import HttpAnalytics, HttpAudit, HttpUsers
from plugins.api.client.transport import HttpTransport, TokenSource


class HttpFleetApi:
    def __init__(self, base_url: str, tokens: TokenSource, *, timeout_s: float = 15.0,
                 retries: int = 3, backoff_s: float = 0.5) -> None:
        self.http = HttpTransport(base_url, tokens, timeout_s=timeout_s, retries=retries,
                                  backoff_s=backoff_s)
        # set by sign_locally(): a server without a key of its own (AWS)
        self.signing_keys: CodeSigningKeys | None = None
        self.uploads_dir: Path | None = None

    def sign_locally(self, keys: CodeSigningKeys, uploads_dir: Path) -> None:
        """Images and deployment manifests are signed on this machine with this
        person's key, and images go straight to storage (resumable: tickets
        kept in ``uploads_dir``)."""
        self.signing_keys = keys
        self.uploads_dir = uploads_dir
        self.__dict__.pop("firmware", None)
        self.__dict__.pop("deployments", None)

    @property
    def base_url(self) -> str:
        return self.http.base_url

    @cached_property
    def actor(self) -> Actor:
        me = self.users.me()
        return Actor(str(me["user"]), Role(me["role"]), str(me.get("organization") or ""))

    @cached_property
    def devices(self) -> HttpDevices:
        return HttpDevices(self.http)

    @cached_property
    def alerts(self) -> HttpAlerts:
        return HttpAlerts(self.http)

    @cached_property
    def firmware(self) -> HttpFirmware:
        return HttpFirmware(self.http, self.devices, signing_keys=self.signing_keys,
                            uploads_dir=self.uploads_dir)

    @cached_property
    def deployments(self) -> HttpDeployments:
        return HttpDeployments(self.http, self.devices, signing_keys=self.signing_keys)

    @cached_property
    def analytics(self) -> HttpAnalytics:
        return HttpAnalytics(self.http, self.devices, self.alerts)

    @cached_property
    def users(self) -> HttpUsers:
        return HttpUsers(self.http)

    @cached_property
    def audit(self) -> HttpAudit:
        return HttpAudit(self.http)
