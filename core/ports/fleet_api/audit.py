"""The audit use cases as a front end sees them (see core.ports.fleet_api).

Reading, verifying and exporting need ``audit.read`` (engineers and admins);
verifications and exports are themselves written to the trail.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Protocol

from core.ports.audit import AuditEntry, AuditFilter, AuditReport

if TYPE_CHECKING:
    from core.services.audit import AuditExport
    from core.services.fleet_view import Page


class AuditApi(Protocol):
    def list(self, query: AuditFilter | None = None) -> builtins.list[AuditEntry]:
        """Entries matching ``query`` (its ``limit`` with ``newest_first`` for the newest)."""
        ...

    def page(self, query: AuditFilter | None = None, limit: int | None = None,
             next_token: str = "") -> Page[AuditEntry]:
        """Newest first, one page; ``next`` of the result fetches the following one."""
        ...

    def verify(self) -> AuditReport:
        """Walk the hash chain and the signed checkpoints (audited as audit.verify)."""
        ...

    def export(self, fmt: str, query: AuditFilter | None = None) -> AuditExport:
        """CSV or JSON with the head hash (audited as audit.export)."""
        ...
