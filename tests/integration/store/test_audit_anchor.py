"""The anchored audit trail against the attacks finding 8 names: an edited row,
the newest rows deleted, a forged row appended (with a correct hash: anyone
can compute SHA-256), checkpoints deleted. Each is caught, naming the first
entry that does not check out. Real SQLite (and PostgreSQL when configured)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from core.model.timeutil import utcnow
from core.store import Store
from core.store.audit import entry_hash
from core.store.audit_anchor import (
    ANCHOR_FILE,
    KEY_SECRET,
    AuditAnchor,
    CheckpointTimer,
    load_anchor,
    read_anchor_file,
)
from core.store.schema import AuditRow, table_of

KEY = bytes(range(32))


@pytest.fixture
def anchored(store: Store, tmp_path: Path) -> Store:
    store.audit.anchor = AuditAnchor(KEY, tmp_path / "anchor" / ANCHOR_FILE)
    for i in range(10):
        store.audit.append("alice", "device.update", f"pump-{i}", {"i": i})
    return store


def _sql(store: Store, statement: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_an_intact_trail_checks_out_and_every_entry_is_anchored(anchored: Store,
                                                                tmp_path: Path) -> None:
    report = anchored.audit.check()
    assert report.ok, report.problems
    assert (report.entries, report.head_seq, report.checkpoints) == (10, 10, 10)
    assert report.signatures_checked and report.summary().startswith("audit trail intact")
    kept = read_anchor_file(tmp_path / "anchor" / ANCHOR_FILE)
    assert kept is not None and (kept.number, kept.head_seq, kept.entry_count) == (10, 10, 10)
    assert kept.head_hash == anchored.audit.head()[1]


def test_an_edited_row_is_named(anchored: Store) -> None:
    _sql(anchored, "UPDATE audit SET actor = 'mallory' WHERE seq = 4")
    report = anchored.audit.check()
    assert not report.ok and report.first_bad_seq == 4
    assert "entry #4 does not match its hash" in report.problems[0]


def test_deleting_the_newest_rows_is_caught(anchored: Store) -> None:
    """Finding 8: the chain alone stays valid after its tail is cut off."""
    _sql(anchored, "DELETE FROM audit WHERE seq > 7")
    assert anchored.audit.verify() is None  # the bare chain cannot see it
    report = anchored.audit.check()
    assert not report.ok and report.first_bad_seq == 8
    assert "entry #8 is missing" in report.problems[0]
    assert "the newest entries were deleted" in report.problems[0]


def test_deleting_the_newest_rows_and_their_checkpoints_is_caught_by_the_file(
        anchored: Store) -> None:
    _sql(anchored, "DELETE FROM audit WHERE seq > 7")
    _sql(anchored, "DELETE FROM audit_checkpoints WHERE number > 7")
    report = anchored.audit.check()
    assert not report.ok and report.first_bad_seq == 8
    assert "checkpoint #10 (kept in" in report.problems[0]


def test_a_forged_row_with_a_correct_hash_is_caught(anchored: Store) -> None:
    """Finding 8: appending a forged entry went unnoticed."""
    audit = table_of(AuditRow)
    with anchored.engine.begin() as conn:
        prev = conn.scalar(select(audit.c.hash).order_by(audit.c.seq.desc()).limit(1))
        ts = utcnow() - timedelta(minutes=5)
        details = {"role": "admin"}
        conn.execute(insert(audit).values(
            ts=ts, actor="maria", action="rule.delete", subject="hot", details=details,
            prev_hash=prev, hash=entry_hash(prev, ts, "maria", "rule.delete", "hot", details)))
    assert anchored.audit.verify() is None  # the bare chain accepts it
    report = anchored.audit.check()
    assert not report.ok and report.first_bad_seq == 11
    assert "entry #11 is not covered by any signed checkpoint" in report.problems[0]


def test_a_rewritten_chain_is_caught_by_the_checkpoints(anchored: Store) -> None:
    """Edit one entry and recompute every hash after it: the chain is valid
    again, but no longer what the checkpoints signed."""
    entries = anchored.audit.entries()[4:]
    audit = table_of(AuditRow)
    with anchored.engine.begin() as conn:
        for e in entries:  # out of the way first: prev_hash and hash are UNIQUE
            conn.execute(audit.update().where(audit.c.seq == e.seq)
                         .values(prev_hash=f"old-prev-{e.seq}", hash=f"old-{e.seq}"))
        prev = entries[0].prev_hash
        for e in entries:
            actor = "mallory" if e.seq == 5 else e.actor
            digest = entry_hash(prev, e.ts, actor, e.action, e.subject, e.details)
            conn.execute(audit.update().where(audit.c.seq == e.seq)
                         .values(actor=actor, prev_hash=prev, hash=digest))
            prev = digest
    assert anchored.audit.verify() is None
    report = anchored.audit.check()
    assert not report.ok and report.first_bad_seq == 5
    assert "not what checkpoint #5 signed" in report.problems[0]


def test_deleting_a_checkpoint_is_caught(anchored: Store) -> None:
    _sql(anchored, "DELETE FROM audit_checkpoints WHERE number = 4")
    report = anchored.audit.check()
    assert not report.ok and report.first_bad_seq == 4
    assert "checkpoint #4 is missing" in report.problems[0]


def test_deleting_the_newest_checkpoint_is_caught(anchored: Store) -> None:
    _sql(anchored, "DELETE FROM audit_checkpoints WHERE number = 10")
    report = anchored.audit.check()
    assert not report.ok and report.first_bad_seq == 10


def test_a_forged_checkpoint_has_a_bad_signature(anchored: Store) -> None:
    _sql(anchored, "UPDATE audit_checkpoints SET entry_count = 9 WHERE number = 10")
    report = anchored.audit.check()
    assert not report.ok
    assert any("checkpoint #10 has a bad signature" in p for p in report.problems)


def test_entries_from_consoles_without_the_key_wait_for_the_hubs_checkpoint(
        store: Store, tmp_path: Path) -> None:
    """The team set-up: a console appends without an anchor; the hub signs the
    head on its timer (and once more when it stops)."""
    store.audit.append("li", "alert.acknowledge", "a1")
    hub_anchor = AuditAnchor(KEY, tmp_path / ANCHOR_FILE)
    store.audit.anchor = hub_anchor
    assert store.audit.check(grace=timedelta(minutes=2)).pending == 1
    assert not store.audit.check().ok  # without grace it is unanchored
    timer = CheckpointTimer(store.audit.checkpoint, interval_s=3600).start()
    timer.stop()  # the last checkpoint on the way out
    report = store.audit.check()
    assert report.ok and report.checkpoints == 1 and report.pending == 0
    assert store.audit.checkpoint() is None  # nothing new to sign


def test_a_console_without_the_key_checks_the_chain_but_says_signatures_are_unchecked(
        anchored: Store) -> None:
    anchored.audit.anchor = AuditAnchor(b"another machine's key!", None)
    report = anchored.audit.check()
    assert report.ok and not report.signatures_checked
    assert "signatures not checked" in report.summary()


def test_a_checkpoint_under_another_key_is_a_problem_not_merely_unchecked(
        anchored: Store) -> None:
    """A forged row, then a checkpoint over it signed with the forger's own key and
    chained correctly: the only tell is the key id, which must not just make the
    result 'signatures not checked'."""
    audit = table_of(AuditRow)
    with anchored.engine.begin() as conn:
        prev = conn.scalar(select(audit.c.hash).order_by(audit.c.seq.desc()).limit(1))
        ts = utcnow()
        conn.execute(insert(audit).values(
            ts=ts, actor="maria", action="rule.delete", subject="hot", details={},
            prev_hash=prev, hash=entry_hash(prev, ts, "maria", "rule.delete", "hot", {})))
    genuine = anchored.audit.anchor
    anchored.audit.anchor = AuditAnchor(b"the forger's own key, 32 bytes!!", None)
    forged = anchored.audit.checkpoint()
    assert forged is not None and forged.number == 11
    for anchor in (genuine, None):  # the key's holder, and a console without any key
        anchored.audit.anchor = anchor
        report = anchored.audit.check()
        assert not report.ok and report.first_bad_seq == 11, report.problems
        assert any(p.startswith("checkpoint #11 is signed with key ") and "not the trail's key"
                   in p for p in report.problems), report.problems


def test_a_later_genuine_append_does_not_bless_a_forged_row(anchored: Store) -> None:
    audit = table_of(AuditRow)
    with anchored.engine.begin() as conn:
        prev = conn.scalar(select(audit.c.hash).order_by(audit.c.seq.desc()).limit(1))
        ts = utcnow()
        conn.execute(insert(audit).values(
            ts=ts, actor="maria", action="rule.delete", subject="hot", details={},
            prev_hash=prev, hash=entry_hash(prev, ts, "maria", "rule.delete", "hot", {})))
    anchored.audit.append("alice", "alert.acknowledge", "a1")
    report = anchored.audit.check()
    assert not report.ok and report.first_bad_seq == 11
    assert "entry #11 is not covered" in report.problems[0]


def test_the_key_is_made_once_in_the_secret_store_and_reused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("SMARTIOT_DATA_DIR", str(tmp_path / "secrets"))
    first = load_anchor(tmp_path / "data")
    second = load_anchor(tmp_path / "data")
    assert first is not None and second is not None
    assert first.key_id == second.key_id and first.file == tmp_path / "data" / ANCHOR_FILE
    from core import secrets

    key = secrets.get_secret(KEY_SECRET)
    assert key is not None and len(bytes.fromhex(key)) == 32
    assert key.encode() not in (tmp_path / "secrets" / "secrets.enc").read_bytes()


def test_a_broken_secret_store_leaves_the_trail_unanchored_not_the_console_down(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from core import secrets

    def broken(name: str) -> str:
        raise RuntimeError("the keyring daemon went away")

    monkeypatch.setattr(secrets, "get_secret", broken)
    assert load_anchor(tmp_path) is None
    assert "audit checkpoints are off" in caplog.text


def test_search_filters_on_both_databases(store: Store) -> None:
    from core.ports.audit import AuditFilter

    store.audit.append("ada", "alert.acknowledge", "alert-1", {"role": "admin"})
    store.audit.append("sam", "rule.delete", "hot", {"role": "support", "outcome": "denied"})
    store.audit.append("ada", "alert.resolve", "alert-1_%", {"role": "admin"})
    search = store.audit.search
    assert [e.seq for e in search(AuditFilter(actor="ada"))] == [1, 3]
    assert [e.seq for e in search(AuditFilter(action="alert."))] == [1, 3]
    assert [e.seq for e in search(AuditFilter(action="alert"))] == []  # exact unless "x."
    assert [e.seq for e in search(AuditFilter(subject="1_%"))] == [3]  # no LIKE wildcards
    assert [e.seq for e in search(AuditFilter(outcome="denied"))] == [2]
    assert [e.seq for e in search(AuditFilter(since=utcnow() + timedelta(hours=1)))] == []
    assert [e.seq for e in search(AuditFilter(limit=2, newest_first=True))] == [3, 2]
    assert store.audit.head()[0] == 3 and store.audit.head()[2] == 3
