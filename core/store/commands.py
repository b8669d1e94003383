"""SQL command log: every command is persisted before it goes on the wire."""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from core.errors import NotFound, ValidationError
from core.model.link import CommandRecord, CommandStatus
from core.ports.hub import CommandLog
from core.store.schema import CommandRow, table_of

_cmd = table_of(CommandRow)
_UNFINISHED = (CommandStatus.PENDING.value, CommandStatus.SENT.value)


class SqlCommandLog(CommandLog):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def add(self, record: CommandRecord) -> None:
        try:
            with self._sessions.begin() as session:
                session.add(CommandRow(**_to_row(record)))
        except IntegrityError:
            raise ValidationError(f"command {record.request_id} already exists") from None

    def update(self, record: CommandRecord) -> None:
        values = _to_row(record)
        del values["request_id"]
        with self._engine.begin() as conn:
            result = conn.execute(
                update(_cmd).where(_cmd.c.request_id == record.request_id).values(values)
            )
            if result.rowcount == 0:
                raise NotFound(f"command {record.request_id!r} does not exist")

    def get(self, request_id: str) -> CommandRecord:
        with self._sessions() as session:
            row = session.get(CommandRow, request_id)
            if row is None:
                raise NotFound(f"command {request_id!r} does not exist")
            return _to_domain(row)

    def list_for(self, device_id: str, *, limit: int = 50) -> builtins.list[CommandRecord]:
        stmt = (
            select(CommandRow)
            .where(CommandRow.device_id == device_id)
            .order_by(CommandRow.created_at.desc(), CommandRow.request_id.desc())
            .limit(limit)
        )
        with self._sessions() as session:
            return [_to_domain(row) for row in session.scalars(stmt)]

    def unfinished(self) -> builtins.list[CommandRecord]:
        """Oldest first: the order they were asked for, and so should be resent."""
        stmt = (
            select(CommandRow)
            .where(CommandRow.status.in_(_UNFINISHED))
            .order_by(CommandRow.created_at, CommandRow.request_id)
        )
        with self._sessions() as session:
            return [_to_domain(row) for row in session.scalars(stmt)]


def _to_row(c: CommandRecord) -> dict[str, Any]:
    return {
        "request_id": c.request_id,
        "device_id": c.device_id,
        "command": c.command,
        "params": c.params,
        "requested_by": c.requested_by,
        "status": CommandStatus(c.status).value,
        "response": c.response,
        "error": c.error,
        "created_at": c.created_at,
        "completed_at": c.completed_at,
        "timeout_s": c.timeout_s,
    }


def _to_domain(row: CommandRow) -> CommandRecord:
    return CommandRecord(
        request_id=row.request_id,
        device_id=row.device_id,
        command=row.command,
        params=dict(row.params),
        requested_by=row.requested_by,
        status=CommandStatus(row.status),
        response=dict(row.response),
        error=row.error,
        created_at=row.created_at,
        completed_at=row.completed_at,
        timeout_s=row.timeout_s,
    )
