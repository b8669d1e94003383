"""Reading, verifying and exporting the audit trail, for ``smartiot audit`` and
the Audit page alike.

Reading the trail needs ``audit.read`` (engineers and admins): it says who
did what to which device, which is itself worth protecting. Exports and
verifications are recorded in the trail, so an auditor can see who took a
copy and when the trail was last checked.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from core.errors import NotFound, ValidationError
from core.model.roles import Actor, Permission
from core.model.timeutil import utcnow
from core.ports.audit import AuditEntry, AuditFilter, AuditReader, AuditReport
from core.services.access import authorize, record_action
from core.services.fleet_view import Page, decode_token, encode_token

if TYPE_CHECKING:
    from core.services.wiring import Services

MAX_PAGE = 500
DEFAULT_PAGE = 50

EXPORT_FORMATS = ("csv", "json")
CSV_COLUMNS = ("seq", "ts", "actor", "action", "subject", "role", "outcome", "details",
               "prev_hash", "hash")


@dataclass(frozen=True, slots=True)
class AuditExport:
    text: str
    entries: int
    head_seq: int
    head_hash: str


class AuditService:
    def __init__(self, reader: AuditReader | None, *, grace: timedelta = timedelta(0)) -> None:
        """``grace``: how long the newest entries may wait for the hub's periodic
        checkpoint (the team set-up); none where every append signs its own."""
        self._reader = reader
        self.grace = grace

    def _trail(self) -> AuditReader:
        if self._reader is None:
            raise NotFound("this backend keeps no audit trail")
        return self._reader

    def list(self, actor: Actor, query: AuditFilter | None = None) -> list[AuditEntry]:
        trail = self._trail()
        authorize(trail, actor, Permission.AUDIT_READ, "audit.list", "audit")
        return trail.search(query)

    def page(self, actor: Actor, query: AuditFilter | None = None, *, limit: int | None = None,
             next_token: str = "") -> Page[AuditEntry]:
        """Newest first, one page; ``next`` fetches the following (older) one."""
        trail = self._trail()
        authorize(trail, actor, Permission.AUDIT_READ, "audit.list", "audit")
        size = DEFAULT_PAGE if limit is None else limit
        if not 1 <= size <= MAX_PAGE:
            raise ValidationError(f"limit: {size} must be between 1 and {MAX_PAGE}")
        offset = decode_token(next_token)
        wanted = replace(query or AuditFilter(), limit=offset + size + 1, newest_first=True)
        rows = sorted(trail.search(wanted), key=lambda e: e.seq, reverse=True)[offset:]
        more = len(rows) > size
        return Page(rows[:size], encode_token(offset + size) if more else "")

    def verify(self, actor: Actor) -> AuditReport:
        trail = self._trail()
        authorize(trail, actor, Permission.AUDIT_READ, "audit.verify", "audit")
        report = trail.check(grace=self.grace)
        record_action(trail, actor, "audit.verify", "audit", {
            "ok": report.ok, "entries": report.entries, "head_seq": report.head_seq,
            "head_hash": report.head_hash, "first_bad_seq": report.first_bad_seq})
        return report

    def export(self, actor: Actor, fmt: str, query: AuditFilter | None = None) -> AuditExport:
        """The entries as CSV or JSON with the head hash they were read under, so a
        copy kept elsewhere pins the trail: a later verification that finds a
        different entry at that seq shows the trail was changed since."""
        if fmt not in EXPORT_FORMATS:
            raise ValidationError(f"export format {fmt!r} is not one of "
                                  f"{', '.join(EXPORT_FORMATS)}")
        trail = self._trail()
        authorize(trail, actor, Permission.AUDIT_READ, "audit.export", "audit", {"format": fmt})
        head_seq, head_hash, total = trail.head()
        entries = [e for e in trail.search(query) if e.seq <= head_seq]
        text = (_as_json(entries, head_seq, head_hash, total) if fmt == "json"
                else _as_csv(entries, head_seq, head_hash, total))
        record_action(trail, actor, "audit.export", "audit", {
            "format": fmt, "entries": len(entries), "head_seq": head_seq,
            "head_hash": head_hash})
        return AuditExport(text, len(entries), head_seq, head_hash)


def entry_json(e: AuditEntry) -> dict[str, Any]:
    return {"seq": e.seq, "ts": e.ts.isoformat(timespec="microseconds"), "actor": e.actor,
            "action": e.action, "subject": e.subject, "details": e.details,
            "prev_hash": e.prev_hash, "hash": e.hash}


def _as_json(entries: list[AuditEntry], head_seq: int, head_hash: str, total: int) -> str:
    return json.dumps({
        "exported_at": utcnow().isoformat(timespec="seconds"),
        "head": {"seq": head_seq, "hash": head_hash, "entries": total},
        "entries": [entry_json(e) for e in entries],
    }, indent=2, ensure_ascii=False) + "\n"


def _as_csv(entries: list[AuditEntry], head_seq: int, head_hash: str, total: int) -> str:
    out = io.StringIO()
    out.write(f"# smartiot audit export {utcnow().isoformat(timespec='seconds')}; "
              f"head seq {head_seq} hash {head_hash}; {total} entries in the trail\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        writer.writerow([e.seq, e.ts.isoformat(timespec="microseconds"), e.actor, e.action,
                         e.subject, e.details.get("role", ""), e.details.get("outcome", "ok"),
                         json.dumps(e.details, sort_keys=True, ensure_ascii=False),
                         e.prev_hash, e.hash])
    return out.getvalue()


class AuditSession:
    """The audit use cases for one person (core.ports.fleet_api.AuditApi)."""

    def __init__(self, services: Services, actor: Actor) -> None:
        self._service: AuditService = services.audit
        self._actor = actor

    def list(self, query: AuditFilter | None = None) -> list[AuditEntry]:
        return self._service.list(self._actor, query)

    def page(self, query: AuditFilter | None = None, limit: int | None = None,
             next_token: str = "") -> Page[AuditEntry]:
        return self._service.page(self._actor, query, limit=limit, next_token=next_token)

    def verify(self) -> AuditReport:
        return self._service.verify(self._actor)

    def export(self, fmt: str, query: AuditFilter | None = None) -> AuditExport:
        return self._service.export(self._actor, fmt, query)
