"""Persistence for the console and hub: SQLAlchemy 2.0 over SQLite or PostgreSQL.

The only part of ``core`` allowed to import SQLAlchemy and Alembic. Callers
use :class:`Store` (or the repositories, which implement ``core.ports``);
nothing here hands SQLAlchemy objects upwards.
"""

from core.store.alerts import SqlAlertStore
from core.store.audit import AuditEntry, AuditLog
from core.store.commands import SqlCommandLog
from core.store.deployments import SqlDeploymentService
from core.store.engine import create_store_engine, default_sqlite_url
from core.store.firmware import SqlFirmwareRepository
from core.store.link_stats import SqlLinkStatsStore
from core.store.outbox import Outbox, OutboxMessage
from core.store.quarantine import SqlQuarantineStore
from core.store.registry import SqlDeviceRegistry
from core.store.rules import SqlAlertRuleStore
from core.store.shadows import SqlShadowStore
from core.store.store import Store
from core.store.telemetry import SqlTelemetryStore

__all__ = [
    "AuditEntry",
    "AuditLog",
    "Outbox",
    "OutboxMessage",
    "SqlAlertRuleStore",
    "SqlAlertStore",
    "SqlCommandLog",
    "SqlDeploymentService",
    "SqlDeviceRegistry",
    "SqlFirmwareRepository",
    "SqlLinkStatsStore",
    "SqlQuarantineStore",
    "SqlShadowStore",
    "SqlTelemetryStore",
    "Store",
    "create_store_engine",
    "default_sqlite_url",
]
