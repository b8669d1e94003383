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
from datetime import timedelta
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
from core.services.firmware import FirmwareService
from core.services.fleet_view import FleetView
from core.services.ota import OtaService
from core.services.signing_keys import SigningKeyService, TeamSigner
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
    firmware: FirmwareService
    deployments: OtaService
    signing_keys: CodeSigningKeys | None = None
    rule_types: Mapping[str, AlertRuleTypeSpec] = field(
        default_factory=lambda: dict(BUILTIN_RULE_TYPES))


def build_services(backend: Backend, *, signing_keys: CodeSigningKeys | None = None,
                   audit_grace: timedelta | None = None,
                   rule_types: Mapping[str, AlertRuleTypeSpec] | None = None,
                   trust_key_files: bool = False) -> Services:
    """``trust_key_files``: the one-process console, whose own demo devices trust
    this machine's key files; everywhere else (a team, the REST API) only the
    keys an admin added to the team's list sign images and deployments."""
    trail = backend.audit
    reader = cast(AuditReader, trail) if hasattr(trail, "check") else None
    grace = audit_grace if audit_grace is not None else timedelta(0)
    firmware = _firmware(backend, signing_keys, trust_key_files)
    return Services(
        backend=backend,
        devices=DeviceService.over(backend),
        alerts=AlertService(backend.alerts, backend.audit, rules=backend.rules,
                            registry=backend.registry, telemetry=backend.telemetry,
                            quarantine=backend.quarantine,
                            rule_types={**BUILTIN_RULE_TYPES, **(rule_types or {})}),
        audit=AuditService(reader, grace=grace),
        view=FleetView(backend.registry, backend.alerts, backend.telemetry,
                       deployments=backend.deployments, rules=backend.rules,
                       shadows=backend.shadows),
        users=UserService(backend.preferences, backend.audit, directory=backend.users,
                          accounts=backend.accounts, broker_accounts=backend.broker_accounts),
        analytics=AnalyticsService(backend.registry, backend.alerts, backend.telemetry,
                                   rules=backend.rules, backend_name=backend.name),
        firmware=firmware,
        deployments=_deployments(backend, signing_keys, trust_key_files, firmware),
        signing_keys=signing_keys,
        rule_types=dict(rule_types) if rule_types is not None else dict(BUILTIN_RULE_TYPES),
    )


def _team_keys(backend: Backend, signing_keys: CodeSigningKeys | None,
               trust_key_files: bool) -> SigningKeyService:
    # The one-process console also writes the team's keys where its demo devices
    # read the keys they trust, so a key an admin adds is trusted from the next job.
    on_change = signing_keys.write_team_trust if trust_key_files and signing_keys else None
    return SigningKeyService(backend.trusted_keys, backend.audit, on_change=on_change)


def _firmware(backend: Backend, signing_keys: CodeSigningKeys | None,
              trust_key_files: bool) -> FirmwareService:
    return FirmwareService(backend.firmware, signing_keys, registry=backend.registry,
                           deployments=backend.deployments, audit=backend.audit,
                           team_keys=_team_keys(backend, signing_keys, trust_key_files),
                           local_trust=trust_key_files)


def _deployments(backend: Backend, signing_keys: CodeSigningKeys | None,
                 trust_key_files: bool, firmware: FirmwareService) -> OtaService:
    """``trusted``: the keys a manifest signed on an engineer's machine may be
    signed with (the library's: the team's list, and in the one-process console
    its own key files too)."""
    signer: CodeSigningKeys | TeamSigner | None = signing_keys
    if signing_keys is not None and not trust_key_files:
        signer = TeamSigner(signing_keys, _team_keys(backend, signing_keys, trust_key_files))
    return OtaService(backend.deployments, backend.firmware, backend.registry,
                      audit=backend.audit, signer=signer, trusted=firmware.trusted)
