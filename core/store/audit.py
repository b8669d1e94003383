"""Append-only, hash-chained audit log.

Each entry's hash covers the previous entry's hash and the entry's canonical
JSON, so editing, deleting or re-ordering any row breaks every hash after it;
``verify`` finds the first break. The chain alone cannot show rows cut off
the end, or rows appended by someone who recomputes the hashes: with an
``AuditAnchor`` attached, every append also writes a signed checkpoint of the
head (core.store.audit_anchor), and ``check`` verifies both, naming the first
entry that does not check out. Exports carry the head hash so a copy kept
elsewhere pins the trail as it was.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from core.errors import ConcurrentModification, ValidationError
from core.model.timeutil import utcnow
from core.ports.audit import AuditEntry as AuditEntry
from core.ports.audit import AuditFilter as AuditFilter
from core.ports.audit import AuditReport as AuditReport
from core.store.audit_anchor import (
    GENESIS_MAC,
    AnchorFileError,
    AuditAnchor,
    Checkpoint,
    all_checkpoints,
    latest_checkpoint,
    read_anchor_file,
)
from core.store.schema import AuditRow, table_of

GENESIS = "0" * 64
log = logging.getLogger(__name__)
_APPEND_RETRIES = 5
_VERIFY_PAGE = 1000

_audit = table_of(AuditRow)
_INSERTED = ("ts", "actor", "action", "subject", "details", "prev_hash", "hash")


def entry_hash(
    prev_hash: str, ts: datetime, actor: str, action: str, subject: str, details: dict[str, Any]
) -> str:
    """``seq`` is left out: it is assigned by the database after hashing."""
    body = json.dumps(
        {
            "ts": ts.isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        #: signs a checkpoint with every append once attached (core.store.audit_anchor)
        self.anchor: AuditAnchor | None = None

    def append(
        self, actor: str, action: str, subject: str, details: dict[str, Any] | None = None
    ) -> AuditEntry:
        """Appends are serialised (a write lock taken before the head is read) so
        concurrent writers queue instead of starving each other with retries.
        The UNIQUE prev_hash stays as the backstop: were two writers ever to
        read the same head, one insert fails and is retried, and the chain
        cannot fork."""
        if not actor or not action:
            raise ValidationError("an audit entry needs an actor and an action")
        details = json.loads(json.dumps(details or {}, allow_nan=False))
        for _ in range(_APPEND_RETRIES):
            try:
                with self._engine.begin() as conn:
                    _lock_for_append(conn)
                    head = conn.scalar(select(_audit.c.hash).order_by(_audit.c.seq.desc()).limit(1))
                    prev = head or GENESIS
                    # Both backends keep microseconds, so this hashes what is read back.
                    ts = utcnow()
                    digest = entry_hash(prev, ts, actor, action, subject, details)
                    entry = AuditEntry(0, ts, actor, action, subject, details, prev, digest)
                    values = {f: getattr(entry, f) for f in _INSERTED}
                    seq = int(conn.execute(insert(_audit).values(values)
                                           .returning(_audit.c.seq)).scalar_one())
                    checkpoint = (self.anchor.checkpoint_in(conn, seq, digest, only_own=True)
                                  if self.anchor is not None else None)
                if checkpoint is not None and self.anchor is not None:
                    self._publish(self.anchor, checkpoint)
                return replace(entry, seq=seq)
            except IntegrityError:
                continue
        raise ConcurrentModification("the audit log is too busy to append; try again")

    def checkpoint(self) -> Checkpoint | None:
        """Sign the current head if no checkpoint covers it yet (the hub's timer,
        a clean shutdown); None when there is nothing new or no anchor."""
        anchor = self.anchor
        if anchor is None:
            return None
        with self._engine.begin() as conn:
            _lock_for_append(conn)
            head = conn.execute(select(_audit.c.seq, _audit.c.hash)
                                .order_by(_audit.c.seq.desc()).limit(1)).first()
            if head is None:
                return None
            checkpoint = anchor.checkpoint_in(conn, int(head.seq), str(head.hash))
        if checkpoint is not None:
            self._publish(anchor, checkpoint)
        return checkpoint

    @staticmethod
    def _publish(anchor: AuditAnchor, checkpoint: Checkpoint) -> None:
        try:
            anchor.publish(checkpoint)
        except OSError:
            # The entry and its checkpoint are committed; the file catches up next time.
            log.warning("could not write the audit anchor file %s", anchor.file, exc_info=True)

    def entries(self, *, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        stmt = select(AuditRow).where(AuditRow.seq > after_seq).order_by(AuditRow.seq).limit(limit)
        with self._sessions() as session:
            return [_to_entry(row) for row in session.scalars(stmt)]

    def search(self, query: AuditFilter | None = None) -> list[AuditEntry]:
        """Entries matching ``query`` (bound parameters only), oldest first unless
        ``newest_first``. The outcome filter reads the JSON details in Python
        so it works the same on SQLite and PostgreSQL."""
        q = query or AuditFilter()
        stmt = select(AuditRow)
        if q.actor:
            stmt = stmt.where(AuditRow.actor == q.actor)
        if q.action.endswith("."):
            stmt = stmt.where(AuditRow.action.startswith(q.action, autoescape=True))
        elif q.action:
            stmt = stmt.where(AuditRow.action == q.action)
        if q.subject:
            stmt = stmt.where(AuditRow.subject.contains(q.subject, autoescape=True))
        if q.since is not None:
            stmt = stmt.where(AuditRow.ts >= q.since)
        stmt = stmt.order_by(AuditRow.seq.desc() if q.newest_first else AuditRow.seq)
        if q.limit is not None and not q.outcome:
            stmt = stmt.limit(q.limit)
        with self._sessions() as session:
            found = [_to_entry(row) for row in session.scalars(stmt)]
        if q.outcome:
            found = [e for e in found if e.details.get("outcome", "ok") == q.outcome]
            if q.limit is not None:
                found = found[:q.limit]
        return found

    def head(self) -> tuple[int, str, int]:
        """(newest seq, its hash, number of entries): what an export pins."""
        with self._engine.connect() as conn:
            row = conn.execute(select(_audit.c.seq, _audit.c.hash)
                               .order_by(_audit.c.seq.desc()).limit(1)).first()
            count = conn.scalar(select(func.count()).select_from(_audit)) or 0
        if row is None:
            return 0, GENESIS, 0
        return int(row.seq), str(row.hash), int(count)

    def latest_checkpoint(self) -> Checkpoint | None:
        with self._engine.connect() as conn:
            return latest_checkpoint(conn)

    def check(self, *, grace: timedelta = timedelta(0),
              anchor_file: Any = None) -> AuditReport:
        """Verify the hash chain and the checkpoints. ``grace``: newest entries
        younger than this may still wait for the hub's periodic checkpoint
        (the team set-up); in the one-process set-up every append signs its
        own checkpoint, so the default is none. ``anchor_file`` overrides the
        attached anchor's file (a copy kept elsewhere)."""
        anchor = self.anchor
        checkpoints = all_checkpoints(self._engine)
        problems: list[tuple[int, str]] = []
        by_head: dict[int, Checkpoint] = {}
        signatures_checked = anchor is not None
        prev_mac, expected_number = GENESIS_MAC, 1
        # The first checkpoint fixes the trail's key; the trail has no key rotation,
        # so a later checkpoint under another key id was made by someone else (who
        # can compute a MAC with any key of their own) and must not count as signed.
        trail_key = checkpoints[0].key_id if checkpoints else ""
        for cp in checkpoints:
            first_after = _first_after(by_head)
            if cp.number != expected_number:
                problems.append((first_after, f"checkpoint #{expected_number} is missing "
                                 f"(the next one is #{cp.number}): checkpoints were deleted"))
            elif cp.prev_mac != prev_mac:
                problems.append((first_after, f"checkpoint #{cp.number} does not follow "
                                 "the one before it: checkpoints were removed or replaced"))
            if cp.key_id != trail_key:
                problems.append((cp.head_seq, f"checkpoint #{cp.number} is signed with key "
                                 f"{cp.key_id}, not the trail's key {trail_key} (checkpoint "
                                 f"#{checkpoints[0].number}'s): it was forged or inserted "
                                 "with another key"))
            elif anchor is not None:
                if cp.key_id != anchor.key_id:
                    signatures_checked = False
                elif not anchor.mac_ok(cp):
                    problems.append((cp.head_seq, f"checkpoint #{cp.number} has a bad "
                                     "signature: it was forged or edited"))
            by_head[cp.head_seq] = cp
            prev_mac, expected_number = cp.mac, cp.number + 1

        prev, count, last_seq, last_hash = GENESIS, 0, 0, GENESIS
        now = utcnow()
        last_anchored = max(by_head, default=0)
        pending, unanchored = 0, False
        while page := self.entries(after_seq=last_seq, limit=_VERIFY_PAGE):
            for e in page:
                expected = entry_hash(prev, e.ts, e.actor, e.action, e.subject, e.details)
                if e.prev_hash != prev:
                    problems.append((e.seq, f"entry #{e.seq} does not link to the entry "
                                     "before it: entries before it were deleted or inserted"))
                elif e.hash != expected:
                    problems.append((e.seq, f"entry #{e.seq} does not match its hash: "
                                     "it was edited"))
                count += 1
                signed = by_head.get(e.seq)
                if signed is not None and (signed.head_hash != e.hash
                                           or signed.entry_count != count):
                    problems.append((e.seq, f"entry #{e.seq} is not what checkpoint "
                                     f"#{signed.number} signed ({signed.entry_count} entries, "
                                     f"head {signed.head_hash[:16]}): the trail was rewritten"))
                if e.seq > last_anchored:
                    if now - e.ts <= grace:
                        pending += 1
                    elif not unanchored:
                        unanchored = True
                        problems.append((e.seq, f"entry #{e.seq} is not covered by any "
                                         "signed checkpoint: it was added outside the "
                                         "console, or its checkpoint was deleted"))
                prev, last_seq, last_hash = e.hash, e.seq, e.hash
        for head_seq, cp in sorted(by_head.items()):
            if head_seq > last_seq:
                problems.append((last_seq + 1, f"entry #{last_seq + 1} is missing: checkpoint "
                                 f"#{cp.number} signed {cp.entry_count} entries up to "
                                 f"#{head_seq}, the trail ends at #{last_seq}: the newest "
                                 "entries were deleted"))
                break
        path = anchor_file if anchor_file is not None else (anchor.file if anchor else None)
        if path is not None:
            problems.extend(_check_file(path, checkpoints, last_seq))
        problems.sort(key=lambda p: p[0])
        return AuditReport(
            entries=count, head_seq=last_seq, head_hash=last_hash,
            checkpoints=len(checkpoints),
            first_bad_seq=problems[0][0] if problems else None,
            problems=tuple(dict.fromkeys(text for _, text in problems)),
            signatures_checked=signatures_checked, pending=pending,
        )

    def verify(self) -> int | None:
        """Walk the chain in ``seq`` order; return the first seq whose link or
        hash does not check out, or None if the whole chain is intact."""
        prev, after = GENESIS, 0
        while page := self.entries(after_seq=after, limit=_VERIFY_PAGE):
            for e in page:
                expected = entry_hash(prev, e.ts, e.actor, e.action, e.subject, e.details)
                if e.prev_hash != prev or e.hash != expected:
                    return e.seq
                prev, after = e.hash, e.seq
        return None


def _first_after(by_head: dict[int, Checkpoint]) -> int:
    """The first entry a missing checkpoint would have covered."""
    return max(by_head, default=0) + 1


def _check_file(path: Any, checkpoints: list[Checkpoint], last_seq: int
                ) -> list[tuple[int, str]]:
    """The file holds the newest checkpoint as it was written; the database may
    be ahead of it (a crash between commit and file write), never behind."""
    try:
        kept = read_anchor_file(path)
    except AnchorFileError as exc:
        return [(last_seq + 1, str(exc))]
    if kept is None:
        if checkpoints:
            return [(checkpoints[-1].head_seq, f"the anchor file {path} is missing")]
        return []
    same = next((c for c in checkpoints if c.number == kept.number), None)
    if same is None:
        return [(min(kept.head_seq, last_seq + 1), f"checkpoint #{kept.number} (kept in "
                 f"{path}) is missing from the database: checkpoints and entries after "
                 f"#{max((c.head_seq for c in checkpoints), default=0)} were deleted")]
    if same.mac != kept.mac:
        return [(kept.head_seq, f"checkpoint #{kept.number} in the database differs from "
                 f"the one kept in {path}")]
    return []


def _lock_for_append(conn: Connection) -> None:
    """SQLite: take the database write lock up front (the busy timeout then
    queues writers). PostgreSQL: a table lock mode that conflicts with itself
    but not with readers; the name resolves through search_path."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE")


def _to_entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        ts=row.ts,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        details=dict(row.details),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
