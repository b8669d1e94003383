"""Signed checkpoints of the audit chain's head, so truncation is caught.

The hash chain (core.store.audit) shows an edited or removed row in the
middle, but not rows cut off the end, nor rows appended by someone who can
compute SHA-256 too. A checkpoint says "the trail had N entries, the newest
being #seq with hash H" and is signed with HMAC-SHA256 under a key kept in the
secret store (core.secrets, never in the database or the config file):

* in the one-process set-up, and wherever the hub runs, every append writes
  its checkpoint in the same transaction, so every genuine entry is covered
  the moment it exists; an entry no checkpoint covers was added some other way;
* ``smartiot hub`` also checkpoints the head every minute, covering what
  consoles without the key appended to the shared database (the team
  set-up), see ``CheckpointTimer``; an append never signs over entries that
  arrived without a checkpoint, so a forged row stays visible;
* checkpoints form their own chain (``number`` 1, 2, 3, ... and ``prev_mac``),
  and the newest one is also written to a file in the data dir, outside the
  database, so deleting checkpoints together with entries is caught as well.

``AuditLog.check`` walks both chains and names the first entry that does not
check out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets as _random
import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from core.model.timeutil import utcnow
from core.ports.audit import HUB_CHECKPOINT_INTERVAL_S
from core.store.schema import AuditCheckpointRow, AuditRow, table_of

log = logging.getLogger(__name__)

GENESIS_MAC = "0" * 64
KEY_SECRET = "audit.checkpoint-key"
ANCHOR_FILE = "audit-anchor.json"
HUB_INTERVAL_S = HUB_CHECKPOINT_INTERVAL_S

_checkpoints = table_of(AuditCheckpointRow)
_audit = table_of(AuditRow)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    number: int
    ts: datetime
    head_seq: int
    head_hash: str
    entry_count: int
    prev_mac: str
    key_id: str
    mac: str

    def body(self) -> bytes:
        return json.dumps({
            "number": self.number, "ts": self.ts.isoformat(timespec="microseconds"),
            "head_seq": self.head_seq, "head_hash": self.head_hash,
            "entry_count": self.entry_count, "prev_mac": self.prev_mac, "key_id": self.key_id,
        }, sort_keys=True, separators=(",", ":")).encode()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ts"] = self.ts.isoformat(timespec="microseconds")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(int(data["number"]), datetime.fromisoformat(str(data["ts"])),
                   int(data["head_seq"]), str(data["head_hash"]), int(data["entry_count"]),
                   str(data["prev_mac"]), str(data["key_id"]), str(data["mac"]))


def key_id_of(key: bytes) -> str:
    return hashlib.sha256(b"smartiot-audit-key:" + key).hexdigest()[:16]


class AuditAnchor:
    """Holds the checkpoint key and the anchor file; AuditLog calls it."""

    def __init__(self, key: bytes, file: Path | None = None) -> None:
        if len(key) < 16:
            raise ValueError("the audit checkpoint key must be at least 16 bytes")
        self._key = key
        self.key_id = key_id_of(key)
        self.file = file
        self._file_lock = threading.Lock()

    def sign(self, unsigned: Checkpoint) -> str:
        return hmac.new(self._key, unsigned.body(), hashlib.sha256).hexdigest()

    def mac_ok(self, checkpoint: Checkpoint) -> bool:
        return hmac.compare_digest(self.sign(checkpoint), checkpoint.mac)

    # ------------------------------------------------------------ writing
    def checkpoint_in(self, conn: Connection, head_seq: int, head_hash: str, *,
                      only_own: bool = False) -> Checkpoint | None:
        """Within the appender's transaction (the audit write lock is held):
        sign the head unless the newest checkpoint already covers it.

        ``only_own`` (an append): sign only if the new entry is the one entry
        since the last checkpoint. Otherwise something was added in between
        without a checkpoint; signing now would bless it, so the gap is left
        for verification to report. The very first checkpoint covers whatever
        the trail already holds (a trail older than checkpoints)."""
        last = latest_checkpoint(conn)
        if last is not None and last.head_seq >= head_seq:
            return None
        after = last.head_seq if last is not None else 0
        added = conn.scalar(select(func.count()).select_from(_audit).where(
            _audit.c.seq > after, _audit.c.seq <= head_seq)) or 0
        if only_own and last is not None and added != 1:
            log.warning("audit entry #%d is not anchored: %d entries since checkpoint #%d "
                        "were added without one; run `smartiot audit verify`",
                        head_seq, added - 1, last.number)
            return None
        unsigned = Checkpoint(
            number=(last.number if last else 0) + 1, ts=utcnow(), head_seq=head_seq,
            head_hash=head_hash, entry_count=(last.entry_count if last else 0) + int(added),
            prev_mac=last.mac if last else GENESIS_MAC, key_id=self.key_id, mac="")
        signed = Checkpoint(**{**_fields(unsigned), "mac": self.sign(unsigned)})
        conn.execute(insert(_checkpoints).values(_fields(signed)))
        return signed

    def publish(self, checkpoint: Checkpoint) -> None:
        """After the commit: keep the newest checkpoint outside the database too.
        A crash before this leaves the file one checkpoint behind, which
        verification accepts (the database may be ahead of the file, never behind)."""
        if self.file is None:
            return
        with self._file_lock:
            current = read_anchor_file(self.file)
            if current is not None and current.number >= checkpoint.number:
                return
            self.file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.file.with_name(self.file.name + ".tmp")
            tmp.write_text(json.dumps(checkpoint.to_json(), indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, self.file)


def _fields(checkpoint: Checkpoint) -> dict[str, Any]:
    return {f: getattr(checkpoint, f) for f in Checkpoint.__slots__}


def latest_checkpoint(conn: Connection) -> Checkpoint | None:
    row = conn.execute(select(_checkpoints).order_by(_checkpoints.c.number.desc()).limit(1)
                       ).mappings().first()
    return None if row is None else Checkpoint(**dict(row))


def all_checkpoints(engine: Engine) -> list[Checkpoint]:
    with engine.connect() as conn:
        rows = conn.execute(select(_checkpoints).order_by(_checkpoints.c.number)).mappings()
        return [Checkpoint(**dict(r)) for r in rows]


def read_anchor_file(path: Path) -> Checkpoint | None:
    try:
        return Checkpoint.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AnchorFileError(f"{path}: not a readable audit anchor ({exc})") from None


class AnchorFileError(ValueError):
    """The anchor file exists but cannot be read: reported by verification."""


def load_anchor(data_dir: Path, *, create: bool = True) -> AuditAnchor | None:
    """The anchor for this data dir, its key from the secret store (made on
    first use). None, with a warning, when the secret store cannot be used:
    the trail still works and stays hash-chained, only unanchored."""
    from core import secrets

    try:
        value = secrets.get_secret(KEY_SECRET)
        if value is None and create:
            value = _random.token_hex(32)
            secrets.set_secret(KEY_SECRET, value)
    except Exception as exc:  # noqa: BLE001 - see below
        # A locked or broken secret store must not keep the console from starting:
        # the trail stays hash-chained, and verification says it is unanchored.
        log.warning("audit checkpoints are off: the checkpoint key is unavailable (%s)",
                    type(exc).__name__ if not isinstance(exc, secrets.SecretsError) else exc)
        return None
    if value is None:
        return None
    try:
        key = bytes.fromhex(value)
    except ValueError:
        key = value.encode("utf-8")
    return AuditAnchor(key, data_dir / ANCHOR_FILE)


class CheckpointTimer:
    """The hub's periodic checkpoint: what consoles appended without the key
    is anchored within ``interval_s``."""

    def __init__(self, checkpoint: Any, interval_s: float = HUB_INTERVAL_S) -> None:
        self._checkpoint = checkpoint
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="smartiot-audit-anchor",
                                        daemon=True)

    def start(self) -> CheckpointTimer:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._tick()

    def _tick(self) -> None:
        try:
            self._checkpoint()
        except Exception:
            log.warning("audit checkpoint failed; retrying in %.0f s", self._interval,
                        exc_info=True)

    def stop(self) -> None:
        """A last checkpoint on the way out, so a clean shutdown leaves nothing unanchored."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._tick()


def anchor_audit(audit: Any, data_dir: Path, *, timer: bool) -> CheckpointTimer | None:
    """Attach this data dir's anchor to ``audit`` (an AuditLog); with ``timer``
    (the process runs the hub) also sign the head every minute and on stop."""
    anchor = load_anchor(data_dir)
    if anchor is None:
        return None
    audit.anchor = anchor
    return CheckpointTimer(audit.checkpoint).start() if timer else None
