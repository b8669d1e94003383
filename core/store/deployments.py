"""SQL deployment service: OTA jobs and per-device executions (IoT Jobs rules)."""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.errors import IllegalTransition, NotFound, ValidationError
from core.model import Deployment, DeploymentStatus, Execution, ExecutionStatus
from core.model.deployment import TERMINAL_STATES
from core.model.timeutil import utcnow
from core.ports.deployments import DeploymentService
from core.store.schema import DeploymentRow, ExecutionRow, table_of

_deployments = table_of(DeploymentRow)
_executions = table_of(ExecutionRow)
_TERMINAL = sorted(s.value for s in TERMINAL_STATES)
_RETRIES = 5


class SqlDeploymentService(DeploymentService):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def create(self, deployment: Deployment) -> Deployment:
        d = deployment
        try:
            with self._sessions.begin() as session:
                session.add(
                    DeploymentRow(
                        deployment_id=d.deployment_id,
                        firmware_id=d.firmware_id,
                        targets=list(d.targets),
                        status=d.status.value,
                        created_by=d.created_by,
                        rollout=d.rollout,
                        abort=d.abort,
                        description=d.description,
                        created_at=d.created_at,
                        updated_at=d.updated_at,
                    )
                )
                session.flush()
                session.add_all(
                    _execution_row(Execution(d.deployment_id, device_id, queued_at=d.created_at))
                    for device_id in d.targets
                )
        except IntegrityError:
            raise ValidationError(f"deployment {d.deployment_id} already exists") from None
        return self.get(d.deployment_id)

    def get(self, deployment_id: str) -> Deployment:
        with self._sessions() as session:
            return _deployment(self._deployment_row(session, deployment_id))

    def list(self) -> builtins.list[Deployment]:
        stmt = select(DeploymentRow).order_by(
            DeploymentRow.created_at.desc(), DeploymentRow.deployment_id
        )
        with self._sessions() as session:
            return [_deployment(row) for row in session.scalars(stmt)]

    def executions(self, deployment_id: str) -> builtins.list[Execution]:
        stmt = (
            select(ExecutionRow)
            .where(ExecutionRow.deployment_id == deployment_id)
            .order_by(ExecutionRow.device_id)
        )
        with self._sessions() as session:
            self._deployment_row(session, deployment_id)
            return [_execution(row) for row in session.scalars(stmt)]

    def update_execution(
        self,
        deployment_id: str,
        device_id: str,
        status: ExecutionStatus,
        *,
        status_details: dict[str, str] | None = None,
        expected_version: int | None = None,
    ) -> Execution:
        """Optimistic: the domain decides whether the move is legal, and the
        UPDATE only lands if nobody moved the execution since it was read. If
        someone did, the move is re-judged against the new state (which also
        makes a stale ``expected_version`` fail as IoT Jobs' VersionMismatch)."""
        for _ in range(_RETRIES):
            current = self._execution(deployment_id, device_id)
            updated = current.transition(
                status, status_details=status_details, expected_version=expected_version
            )
            with self._engine.begin() as conn:
                result = conn.execute(
                    update(_executions)
                    .where(
                        _executions.c.deployment_id == deployment_id,
                        _executions.c.device_id == device_id,
                        _executions.c.version_number == current.version_number,
                    )
                    .values(_execution_values(updated))
                )
                if result.rowcount == 1:
                    if updated.status.is_terminal:
                        _complete_if_done(conn, deployment_id)
                    return updated
        raise IllegalTransition(
            f"job {deployment_id} on {device_id} kept changing while updating; try again"
        )

    def cancel(self, deployment_id: str, *, force: bool = False) -> Deployment:
        """Like IoT Jobs' CancelJob: queued executions are canceled; in-progress
        ones only with ``force`` because the device may be mid-flash."""
        current = self.get(deployment_id)
        if current.status is DeploymentStatus.CANCELED:
            return current
        if current.status is DeploymentStatus.COMPLETED:
            raise IllegalTransition(f"deployment {deployment_id} has completed; nothing to cancel")
        cancelable = [ExecutionStatus.QUEUED.value]
        if force:
            cancelable.append(ExecutionStatus.IN_PROGRESS.value)
        now = utcnow()
        with self._engine.begin() as conn:
            conn.execute(
                update(_deployments)
                .where(_deployments.c.deployment_id == deployment_id)
                .values(status=DeploymentStatus.CANCELED.value, updated_at=now)
            )
            conn.execute(
                update(_executions)
                .where(
                    _executions.c.deployment_id == deployment_id,
                    _executions.c.status.in_(cancelable),
                )
                .values(
                    status=ExecutionStatus.CANCELED.value,
                    version_number=_executions.c.version_number + 1,
                    updated_at=now,
                )
            )
        return self.get(deployment_id)

    def _execution(self, deployment_id: str, device_id: str) -> Execution:
        with self._sessions() as session:
            row = session.get(ExecutionRow, (deployment_id, device_id))
            if row is None:
                raise NotFound(f"device {device_id!r} is not a target of job {deployment_id!r}")
            return _execution(row)

    @staticmethod
    def _deployment_row(session: Session, deployment_id: str) -> DeploymentRow:
        row = session.get(DeploymentRow, deployment_id)
        if row is None:
            raise NotFound(f"deployment {deployment_id!r} does not exist")
        return row


def _complete_if_done(conn: Connection, deployment_id: str) -> None:
    """IoT Jobs marks a job COMPLETED once every execution is terminal."""
    pending = conn.scalar(
        select(func.count())
        .select_from(_executions)
        .where(
            _executions.c.deployment_id == deployment_id,
            _executions.c.status.not_in(_TERMINAL),
        )
    )
    if pending == 0:
        conn.execute(
            update(_deployments)
            .where(
                _deployments.c.deployment_id == deployment_id,
                _deployments.c.status.in_(
                    [DeploymentStatus.SCHEDULED.value, DeploymentStatus.IN_PROGRESS.value]
                ),
            )
            .values(status=DeploymentStatus.COMPLETED.value, updated_at=utcnow())
        )


def _execution_values(e: Execution) -> dict[str, Any]:
    return {
        "status": e.status.value,
        "version_number": e.version_number,
        "status_details": dict(e.status_details),
        "queued_at": e.queued_at,
        "started_at": e.started_at,
        "updated_at": e.updated_at,
    }


def _execution_row(e: Execution) -> ExecutionRow:
    return ExecutionRow(
        deployment_id=e.deployment_id, device_id=e.device_id, **_execution_values(e)
    )


def _execution(row: ExecutionRow) -> Execution:
    return Execution(
        deployment_id=row.deployment_id,
        device_id=row.device_id,
        status=ExecutionStatus.parse(row.status),
        version_number=row.version_number,
        status_details=dict(row.status_details),
        queued_at=row.queued_at,
        started_at=row.started_at,
        updated_at=row.updated_at,
    )


def _deployment(row: DeploymentRow) -> Deployment:
    return Deployment(
        deployment_id=row.deployment_id,
        firmware_id=row.firmware_id,
        targets=tuple(row.targets),
        status=DeploymentStatus(row.status),
        created_by=row.created_by,
        rollout=dict(row.rollout),
        abort=dict(row.abort),
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
