"""A backend bundles the ports one data source provides.

Ports a backend cannot offer yet stay ``None`` so pages can say "not
available on this backend" instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.ports.accounts import AccountStore
from core.ports.alerts import AlertStore
from core.ports.broker_accounts import BrokerAccounts
from core.ports.changes import ChangeTokens
from core.ports.commands import CommandChannel
from core.ports.deployments import DeploymentService
from core.ports.firmware import FirmwareRepository
from core.ports.hub import (
    AlertRuleStore,
    AuditTrail,
    CommandLog,
    LinkStatsStore,
    QuarantineStore,
)
from core.ports.idempotency import IdempotencyStore
from core.ports.live import LiveFeed
from core.ports.preferences import PreferenceStore
from core.ports.registry import DeviceRegistry
from core.ports.shadows import ShadowService
from core.ports.signing_keys import TrustedKeyStore
from core.ports.telemetry import TelemetryStore
from core.ports.user_directory import UserDirectory


@dataclass
class Backend:
    name: str
    registry: DeviceRegistry
    alerts: AlertStore
    telemetry: TelemetryStore
    firmware: FirmwareRepository | None = None
    deployments: DeploymentService | None = None
    live: LiveFeed | None = None
    commands: CommandChannel | None = None
    shadows: ShadowService | None = None
    rules: AlertRuleStore | None = None
    quarantine: QuarantineStore | None = None
    link_stats: LinkStatsStore | None = None
    command_log: CommandLog | None = None
    audit: AuditTrail | None = None
    changes: ChangeTokens | None = None  # what changed in the store, by anyone
    trusted_keys: TrustedKeyStore | None = None  # code-signing keys the team trusts
    preferences: PreferenceStore | None = None  # each person's settings (GET/PUT /users/me)
    users: UserDirectory | None = None  # who may work on the fleet, role and organization
    accounts: AccountStore | None = None  # password hashes and refresh tokens (sign-in)
    broker_accounts: BrokerAccounts | None = None  # per-person broker logins (the hub's)
    idempotency: IdempotencyStore | None = None  # the REST API's Idempotency-Keys (AWS)

    def close(self) -> None:
        """Release connections; subclasses with threads override."""
