"""The one function that builds what the REST handlers call, over a backend.

Handlers never reach a port: they get these use cases, each taking the
Actor, checking the role and writing the audit entry. Deployments and the
firmware library bind the Actor at construction (their services were built
for one signed-in person), so the API builds them per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from core.crypto.keystore import CodeSigningKeys
from core.model.roles import Actor
from core.ports.backend import Backend
from core.ports.preferences import PreferenceStore
from core.registrations import AlertRuleTypeSpec
from core.services.alerting.builtin import BUILTIN_RULE_TYPES
from core.services.alerting.service import AlertService
from core.services.devices import DeviceService
from core.services.fleet_view import FleetView
from core.services.ota import OtaService
from core.services.users import UserService
from core.services.wiring import build_services
from plugins.firmware.library import FirmwareLibrary


@dataclass(frozen=True)
class ApiServices:
    devices: DeviceService
    alerts: AlertService
    view: FleetView
    users: UserService
    firmware: Callable[[Actor], FirmwareLibrary] | None = None
    ota: Callable[[Actor], OtaService] | None = None
    rule_types: Mapping[str, AlertRuleTypeSpec] = field(
        default_factory=lambda: dict(BUILTIN_RULE_TYPES))


def build_api_services(backend: Backend, *, signing_keys: CodeSigningKeys | None = None,
                       preferences: PreferenceStore | None = None,
                       rule_types: Mapping[str, AlertRuleTypeSpec] | None = None
                       ) -> ApiServices:
    core = build_services(backend)
    firmware_factory: Callable[[Actor], FirmwareLibrary] | None = None
    ota_factory: Callable[[Actor], OtaService] | None = None
    repo, deployments = backend.firmware, backend.deployments
    if repo is not None and signing_keys is not None:
        keys = signing_keys

        def firmware_factory(actor: Actor) -> FirmwareLibrary:
            return FirmwareLibrary(repo, keys, actor, registry=backend.registry,
                                   deployments=deployments, audit=backend.audit)

        if deployments is not None:
            def ota_factory(actor: Actor) -> OtaService:
                return OtaService(deployments, repo, backend.registry, actor,
                                  audit=backend.audit, signer=keys)

    return ApiServices(
        devices=core.devices,
        alerts=core.alerts,
        view=FleetView(backend.registry, backend.alerts, backend.telemetry,
                       deployments=deployments, rules=backend.rules, shadows=backend.shadows),
        users=UserService(preferences, backend.audit),
        firmware=firmware_factory,
        ota=ota_factory,
        rule_types=dict(rule_types) if rule_types is not None else dict(BUILTIN_RULE_TYPES),
    )
