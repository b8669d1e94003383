"""The ``Store`` facade: one object that owns the engine and every repository."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from sqlalchemy import Engine

from core.store import migrate
from core.store.accounts import SqlAccountStore
from core.store.alerts import SqlAlertStore
from core.store.audit import AuditLog
from core.store.changes import SqlChangeTokens
from core.store.commands import SqlCommandLog
from core.store.deployments import SqlDeploymentService
from core.store.engine import create_store_engine
from core.store.firmware import SqlFirmwareRepository
from core.store.idempotency import SqlIdempotencyStore
from core.store.link_stats import SqlLinkStatsStore
from core.store.outbox import Outbox
from core.store.quarantine import SqlQuarantineStore
from core.store.registry import SqlDeviceRegistry
from core.store.rules import SqlAlertRuleStore
from core.store.shadows import SqlShadowStore
from core.store.signing_keys import SqlTrustedKeyStore
from core.store.telemetry import SqlTelemetryStore
from core.store.user_directory import SqlUserDirectory


class Store:
    """Repositories share one engine (one connection pool) per process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.registry = SqlDeviceRegistry(engine)
        self.alerts = SqlAlertStore(engine)
        self.telemetry = SqlTelemetryStore(engine)
        self.firmware = SqlFirmwareRepository(engine)
        self.deployments = SqlDeploymentService(engine)
        self.outbox = Outbox(engine)
        self.audit = AuditLog(engine)
        self.rules = SqlAlertRuleStore(engine)
        self.quarantine = SqlQuarantineStore(engine)
        self.link_stats = SqlLinkStatsStore(engine)
        self.commands = SqlCommandLog(engine)
        self.shadows = SqlShadowStore(engine)
        self.changes = SqlChangeTokens(engine)
        self.trusted_keys = SqlTrustedKeyStore(engine)
        self.users = SqlUserDirectory(engine)
        self.accounts = SqlAccountStore(engine)  # passwords and refresh tokens
        self.idempotency = SqlIdempotencyStore(engine)  # the REST API's Idempotency-Keys

    @classmethod
    def open(
        cls,
        url: str,
        *,
        connect_args: dict[str, Any] | None = None,
        upgrade: bool = True,
        **engine_kwargs: Any,
    ) -> Store:
        """Migrations run on open because the console and hub start against
        whatever schema the last (possibly older) version left behind."""
        engine = create_store_engine(url, connect_args=connect_args, **engine_kwargs)
        try:
            if upgrade:
                migrate.upgrade(engine)
        except Exception:
            engine.dispose()
            raise
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
