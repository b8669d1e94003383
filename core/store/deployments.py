"""SQL deployment service: OTA jobs and per-device executions (IoT Jobs rules)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.errors import IllegalTransition, NotFound, ValidationError
from core.model import Deployment, DeploymentStatus, Execution, ExecutionStatus
from core.model.deployment import TERMINAL_STATES
from core.model.rollout import JobConfig
from core.model.timeutil import utcnow
from core.ports.deployments import DeploymentService
from core.store.schema import DeploymentRow, ExecutionRow, table_of

_deployments = table_of(DeploymentRow)
_executions = table_of(ExecutionRow)
_TERMINAL = sorted(s.value for s in TERMINAL_STATES)
_RETRIABLE = [
    ExecutionStatus.FAILED.value,
    ExecutionStatus.TIMED_OUT.value,
    ExecutionStatus.REJECTED.value,
]
_RUNNING = [DeploymentStatus.SCHEDULED.value, DeploymentStatus.IN_PROGRESS.value]
_RETRIES = 5
PENDING = "PENDING"
CANCELED = ExecutionStatus.CANCELED.value


class SqlDeploymentService(DeploymentService):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def create(self, deployment: Deployment) -> Deployment:
        d = deployment
        aws = d.config.to_aws()
        abort = aws.pop("abortConfig", {})
        try:
            with self._sessions.begin() as session:
                session.add(
                    DeploymentRow(
                        deployment_id=d.deployment_id,
                        firmware_id=d.firmware_id,
                        targets=list(d.targets),
                        status=d.status.value,
                        created_by=d.created_by,
                        rollout=aws,
                        abort=abort,
                        description=d.description,
                        created_at=d.created_at,
                        updated_at=d.updated_at,
                        document=dict(d.document),
                        target_spec=dict(d.target_spec),
                        reason=d.reason,
                        rollout_state=dict(d.rollout_state),
                    )
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

    def execution(self, deployment_id: str, device_id: str) -> Execution:
        with self._sessions() as session:
            row = session.get(ExecutionRow, (deployment_id, device_id))
            if row is None:
                raise NotFound(f"device {device_id!r} has no execution of job {deployment_id!r}")
            return _execution(row)

    def counts(self, deployment_id: str) -> dict[str, int]:
        """One GROUP BY, because the monitor asks several times a second."""
        stmt = (
            select(_executions.c.status, func.count())
            .where(_executions.c.deployment_id == deployment_id)
            .group_by(_executions.c.status)
        )
        with self._sessions() as session:
            row = self._deployment_row(session, deployment_id)
            targets, status = len(row.targets), row.status
            counts = {str(status): int(n) for status, n in session.execute(stmt)}
        unreleased = targets - sum(counts.values())
        if status == DeploymentStatus.CANCELED.value:
            # A canceled job releases nobody again: its unreleased targets will
            # never be updated, so they count as CANCELED (never as PENDING
            # forever) and the counts still add up to the targets.
            counts[CANCELED] = counts.get(CANCELED, 0) + unreleased
            counts[PENDING] = 0
        else:
            counts[PENDING] = unreleased
        return counts

    def for_device(
        self, device_id: str, statuses: Iterable[ExecutionStatus] | None = None
    ) -> builtins.list[Execution]:
        stmt = select(ExecutionRow).where(ExecutionRow.device_id == device_id)
        if statuses is not None:
            stmt = stmt.where(ExecutionRow.status.in_([s.value for s in statuses]))
        stmt = stmt.order_by(ExecutionRow.queued_at, ExecutionRow.deployment_id)
        with self._sessions() as session:
            return [_execution(row) for row in session.scalars(stmt)]

    def release(self, deployment_id: str, device_ids: Iterable[str]) -> builtins.list[Execution]:
        wanted = list(dict.fromkeys(device_ids))
        now = utcnow()
        with self._engine.begin() as conn:
            row = conn.execute(
                select(_deployments.c.targets, _deployments.c.status).where(
                    _deployments.c.deployment_id == deployment_id
                )
            ).one_or_none()
            if row is None:
                raise NotFound(f"deployment {deployment_id!r} does not exist")
            if row.status not in _RUNNING:
                raise IllegalTransition(
                    f"deployment {deployment_id} is {row.status}; devices are released "
                    "only while it runs"
                )
            targets = set(row.targets)
            strangers = [d for d in wanted if d not in targets]
            if strangers:
                raise ValidationError(
                    f"{', '.join(strangers[:5])} not a target of deployment {deployment_id}"
                )
            released = set(
                conn.scalars(
                    select(_executions.c.device_id).where(
                        _executions.c.deployment_id == deployment_id
                    )
                )
            )
            fresh = [
                Execution(deployment_id, device_id, queued_at=now, updated_at=now)
                for device_id in wanted
                if device_id not in released
            ]
            if fresh:
                conn.execute(
                    insert(_executions),
                    [
                        {"deployment_id": deployment_id, "device_id": e.device_id,
                         **_execution_values(e)}
                        for e in fresh
                    ],
                )
            conn.execute(
                update(_deployments)
                .where(
                    _deployments.c.deployment_id == deployment_id,
                    _deployments.c.status == DeploymentStatus.SCHEDULED.value,
                )
                .values(status=DeploymentStatus.IN_PROGRESS.value, updated_at=now)
            )
        return fresh

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
            current = self.execution(deployment_id, device_id)
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

    def requeue(self, deployment_id: str, device_ids: Iterable[str]) -> builtins.list[Execution]:
        wanted = list(dict.fromkeys(device_ids))
        now = utcnow()
        with self._engine.begin() as conn:
            status = conn.scalar(
                select(_deployments.c.status).where(_deployments.c.deployment_id == deployment_id)
            )
            if status is None:
                raise NotFound(f"deployment {deployment_id!r} does not exist")
            if status == DeploymentStatus.CANCELED.value:
                raise IllegalTransition(
                    f"deployment {deployment_id} was canceled; create a new one"
                )
            conn.execute(
                update(_executions)
                .where(
                    _executions.c.deployment_id == deployment_id,
                    _executions.c.device_id.in_(wanted),
                    _executions.c.status.in_(_RETRIABLE),
                )
                .values(
                    status=ExecutionStatus.QUEUED.value,
                    execution_number=_executions.c.execution_number + 1,
                    version_number=1,
                    status_details={},
                    queued_at=now,
                    started_at=None,
                    updated_at=now,
                )
            )
            rows = conn.execute(
                select(_executions).where(
                    _executions.c.deployment_id == deployment_id,
                    _executions.c.device_id.in_(wanted),
                    _executions.c.status == ExecutionStatus.QUEUED.value,
                    _executions.c.queued_at == now,
                )
            ).all()
            if rows:
                conn.execute(
                    update(_deployments)
                    .where(
                        _deployments.c.deployment_id == deployment_id,
                        _deployments.c.status == DeploymentStatus.COMPLETED.value,
                    )
                    .values(status=DeploymentStatus.IN_PROGRESS.value, updated_at=now)
                )
        return [_execution_from_mapping(dict(r._mapping)) for r in rows]

    def set_status(
        self, deployment_id: str, status: DeploymentStatus, *, reason: str = ""
    ) -> Deployment:
        if status not in (DeploymentStatus.PAUSED, DeploymentStatus.IN_PROGRESS):
            raise ValidationError(
                f"a deployment can be set to PAUSED or IN_PROGRESS here, not {status.value}; "
                "cancel it to stop it for good"
            )
        current = self.get(deployment_id)
        if current.is_finished:
            raise IllegalTransition(
                f"deployment {deployment_id} is {current.status.value}; it can no longer be "
                f"{'paused' if status is DeploymentStatus.PAUSED else 'resumed'}"
            )
        with self._engine.begin() as conn:
            conn.execute(
                update(_deployments)
                .where(_deployments.c.deployment_id == deployment_id)
                .values(status=status.value, reason=reason, updated_at=utcnow())
            )
        return self.get(deployment_id)

    def cancel(self, deployment_id: str, *, force: bool = False, reason: str = "") -> Deployment:
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
                .values(status=DeploymentStatus.CANCELED.value, reason=reason, updated_at=now)
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

    def save_rollout_state(self, deployment_id: str, state: Mapping[str, Any]) -> None:
        with self._engine.begin() as conn:
            result = conn.execute(
                update(_deployments)
                .where(_deployments.c.deployment_id == deployment_id)
                .values(rollout_state=dict(state))
            )
            if result.rowcount != 1:
                raise NotFound(f"deployment {deployment_id!r} does not exist")

    @staticmethod
    def _deployment_row(session: Session, deployment_id: str) -> DeploymentRow:
        row = session.get(DeploymentRow, deployment_id)
        if row is None:
            raise NotFound(f"deployment {deployment_id!r} does not exist")
        return row


def _complete_if_done(conn: Connection, deployment_id: str) -> None:
    """IoT Jobs marks a job COMPLETED once every target's execution is terminal
    (targets the rollout has not released yet are not terminal)."""
    targets = conn.scalar(
        select(_deployments.c.targets).where(_deployments.c.deployment_id == deployment_id)
    )
    finished = conn.scalar(
        select(func.count())
        .select_from(_executions)
        .where(
            _executions.c.deployment_id == deployment_id,
            _executions.c.status.in_(_TERMINAL),
        )
    )
    if targets is not None and finished == len(targets):
        conn.execute(
            update(_deployments)
            .where(
                _deployments.c.deployment_id == deployment_id,
                _deployments.c.status.in_([*_RUNNING, DeploymentStatus.PAUSED.value]),
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
        "execution_number": e.execution_number,
    }


def _execution_from_mapping(row: Mapping[str, Any]) -> Execution:
    return Execution(
        deployment_id=row["deployment_id"],
        device_id=row["device_id"],
        status=ExecutionStatus.parse(row["status"]),
        version_number=row["version_number"],
        status_details=dict(row["status_details"]),
        execution_number=row["execution_number"],
        queued_at=row["queued_at"],
        started_at=row["started_at"],
        updated_at=row["updated_at"],
    )


def _execution(row: ExecutionRow) -> Execution:
    return _execution_from_mapping(
        {c: getattr(row, c) for c in (
            "deployment_id", "device_id", "status", "version_number", "status_details",
            "execution_number", "queued_at", "started_at", "updated_at")}
    )


def _deployment(row: DeploymentRow) -> Deployment:
    aws = dict(row.rollout)
    if "maximumPerMinute" in aws or "exponentialRate" in aws:
        # Before revision 0004 the column held jobExecutionsRolloutConfig itself.
        aws = {"jobExecutionsRolloutConfig": aws}
    if row.abort:
        aws["abortConfig"] = dict(row.abort)
    return Deployment(
        deployment_id=row.deployment_id,
        firmware_id=row.firmware_id,
        targets=tuple(row.targets),
        status=DeploymentStatus(row.status),
        created_by=row.created_by,
        config=JobConfig.from_aws(aws),
        document=dict(row.document or {}),
        target_spec=dict(row.target_spec or {}),
        reason=row.reason or "",
        rollout_state=dict(row.rollout_state or {}),
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
