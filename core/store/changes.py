"""Change tokens over the SQL store: one aggregate query per topic.

``count`` catches inserts and deletes, ``sum(version)`` every versioned save
(alerts and rules bump ``version`` on each change), ``max(updated_at)`` the
other tables' changes. Aggregates rather than a change-log table, so every
writer is seen — the hub, another console, the CLI, an older version of the
program — without any of them having to cooperate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, func, select

from core.ports import changes as topics
from core.ports.changes import ChangeTokens
from core.store.schema import (
    AlertRow,
    AlertRuleRow,
    DeploymentRow,
    DeviceRow,
    ExecutionRow,
    FirmwareRow,
)


class SqlChangeTokens(ChangeTokens):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queries: dict[str, list[Any]] = {
            topics.ALERTS: [select(func.count(), func.sum(AlertRow.version),
                                   func.max(AlertRow.updated_at))],
            topics.RULES: [select(func.count(), func.sum(AlertRuleRow.version),
                                  func.max(AlertRuleRow.updated_at))],
            topics.FIRMWARE: [select(func.count(), func.max(FirmwareRow.created_at))],
            topics.DEPLOYMENTS: [
                select(func.count(), func.max(DeploymentRow.updated_at)),
                select(func.count(), func.max(ExecutionRow.updated_at)),
            ],
            topics.DEVICES: [select(func.count(), func.max(DeviceRow.updated_at))],
        }

    def tokens(self) -> Mapping[str, str]:
        out: dict[str, str] = {}
        with self._engine.connect() as conn:
            for topic, statements in self._queries.items():
                parts = []
                for stmt in statements:
                    row = conn.execute(stmt).one()
                    parts.append("|".join("" if v is None else str(v) for v in row))
                out[topic] = "/".join(parts)
        return out
