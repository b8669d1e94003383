"""``smartiot audit verify|list|export`` as a person runs it: real subprocesses on
a real SQLite file in a fresh data dir (the one-process set-up), the checkpoint
key in the encrypted secrets file of a machine without an OS keyring."""

from __future__ import annotations

import csv
import io
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.model.timeutil import utcnow
from core.store.audit import entry_hash

# The account the process really runs as. Not getpass.getuser(): that reads LOGNAME/USER
# first, so a test comparing against it would agree with a product that trusts them.
ME = pwd.getpwuid(os.getuid()).pw_name


def smartiot(tmp_path: Path, *args: str, role: str = "",
             extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update({
        "SMARTIOT_CONFIG": str(tmp_path / "config.toml"),
        "SMARTIOT_DATA_DIR": str(tmp_path / "data"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    })
    env.pop("SMARTIOT_ROLE", None)
    if role:
        env["SMARTIOT_ROLE"] = role
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "console.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five audited actions through the real CLI, made once."""
    base = tmp_path_factory.mktemp("recorded")
    for i in range(4):
        done = smartiot(base, "devices", "register", f"pump-{i}", "--type", "pump")
        assert done.returncode == 0, done.stderr
    refused = smartiot(base, "devices", "register", "pump-9", "--type", "pump",
                       role="support")
    assert refused.returncode != 0 and "may not register devices" in refused.stderr
    return base


@pytest.fixture
def trail(recorded: Path, tmp_path: Path) -> Path:
    """A private copy of the recorded data dir (database, anchor file, secrets)."""
    shutil.copytree(recorded / "data", tmp_path / "data")
    return tmp_path / "data" / "smartiot.db"


def _sql(db: Path, statement: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(statement)


def test_verify_an_intact_trail(tmp_path: Path, trail: Path) -> None:
    result = smartiot(tmp_path, "audit", "verify")
    assert result.returncode == 0, result.stderr
    assert "audit trail intact: 5 entries, head #5" in result.stdout
    assert "5 signed checkpoints" in result.stdout


@pytest.mark.parametrize(("tamper", "first_bad", "words"), [
    ("UPDATE audit SET actor = 'maria' WHERE seq = 2", 2, "does not match its hash"),
    ("DELETE FROM audit WHERE seq >= 4", 4, "the newest entries were deleted"),
    ("DELETE FROM audit_checkpoints WHERE number = 3", 3, "checkpoint #3 is missing"),
    ("DELETE FROM audit_checkpoints WHERE number = 5", 5, "is missing from the database"),
], ids=["edit", "truncate", "delete-checkpoint", "delete-newest-checkpoint"])
def test_verify_names_the_first_bad_entry_and_fails(tmp_path: Path, trail: Path, tamper: str,
                                                    first_bad: int, words: str) -> None:
    _sql(trail, tamper)
    result = smartiot(tmp_path, "audit", "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"first bad entry: #{first_bad}" in result.stderr
    assert words in result.stderr
    as_json = json.loads(smartiot(tmp_path, "audit", "verify", "--json").stdout)
    assert as_json["ok"] is False and as_json["first_bad_seq"] == first_bad


def test_verify_catches_a_forged_row_appended_with_a_correct_hash(tmp_path: Path,
                                                                  trail: Path) -> None:
    with sqlite3.connect(trail) as conn:
        prev = conn.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()[0]
        ts = utcnow()
        digest = entry_hash(prev, ts, "maria", "rule.delete", "hot", {})
        conn.execute("INSERT INTO audit (ts, actor, action, subject, details, prev_hash, hash)"
                     " VALUES (?, 'maria', 'rule.delete', 'hot', '{}', ?, ?)",
                     (ts.replace(tzinfo=None).isoformat(sep=" "), prev, digest))
    result = smartiot(tmp_path, "audit", "verify")
    assert result.returncode == 1
    assert "first bad entry: #6" in result.stderr and "not covered" in result.stderr


def test_list_filters(tmp_path: Path, trail: Path) -> None:
    me = ME
    everything = json.loads(smartiot(tmp_path, "audit", "list", "--json").stdout)
    assert [e["action"] for e in everything] == ["device.register"] * 5
    denied = smartiot(tmp_path, "audit", "list", "--denied")
    assert denied.returncode == 0 and "pump-9 DENIED" in denied.stdout
    assert "pump-0" not in denied.stdout
    by_target = json.loads(smartiot(tmp_path, "audit", "list", "--target", "pump-1",
                                    "--json").stdout)
    assert [e["subject"] for e in by_target] == ["pump-1"]
    assert json.loads(smartiot(tmp_path, "audit", "list", "--actor", "nobody", "--json"
                               ).stdout) == []
    mine = json.loads(smartiot(tmp_path, "audit", "list", "--actor", me, "--since", "1h",
                               "--action", "device.", "--limit", "2", "--json").stdout)
    assert [e["seq"] for e in mine] == [4, 5]
    future = json.loads(smartiot(tmp_path, "audit", "list", "--since", "2999-01-01",
                                 "--json").stdout)
    assert future == []
    bad = smartiot(tmp_path, "audit", "list", "--since", "yesterday-ish")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_export_csv_and_json_carry_the_head_hash(tmp_path: Path, trail: Path) -> None:
    out = tmp_path / "audit.json"
    result = smartiot(tmp_path, "audit", "export", "--format", "json", "-o", str(out))
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["head"]["seq"] == 5 and len(data["entries"]) == 5
    assert data["head"]["hash"] == data["entries"][-1]["hash"]
    csv_text = smartiot(tmp_path, "audit", "export", "--denied").stdout
    first, *rest = csv_text.splitlines()
    assert first.startswith("# smartiot audit export") and "head seq 6 hash " in first
    rows = list(csv.DictReader(io.StringIO("\n".join(rest))))
    assert [(r["subject"], r["outcome"], r["role"]) for r in rows] == [
        ("pump-9", "denied", "support")]
    actions = [e["action"] for e in json.loads(
        smartiot(tmp_path, "audit", "list", "--action", "audit.", "--json").stdout)]
    assert actions == ["audit.export", "audit.export"]  # who took a copy is on record


def test_roles_without_audit_read_are_refused_and_the_refusal_recorded(tmp_path: Path,
                                                                       trail: Path) -> None:
    for action in ("verify", "list", "export"):
        result = smartiot(tmp_path, "audit", action, role="technician")
        assert result.returncode == 1
        assert "not allowed" in result.stderr and "audit trail" in result.stderr
    refusals = json.loads(smartiot(tmp_path, "audit", "list", "--action", "audit.",
                                   "--denied", "--json").stdout)
    assert [(e["action"], e["details"]["role"]) for e in refusals] == [
        ("audit.verify", "technician"), ("audit.list", "technician"),
        ("audit.export", "technician")]
    assert smartiot(tmp_path, "audit", "verify").returncode == 0  # refusals are anchored too


def test_config_show_says_who_you_act_as(tmp_path: Path) -> None:
    env_user = smartiot(tmp_path, "config", "show", role="support")
    assert env_user.returncode == 0, env_user.stderr
    assert f"you act as  : {ME} (the OS account), role support" in env_user.stdout


def test_login_name_variables_cannot_make_the_trail_name_someone_else(tmp_path: Path) -> None:
    impostor = "maria" if ME != "maria" else "olivier"
    spoofed = {"LOGNAME": impostor, "USER": impostor, "LNAME": impostor, "USERNAME": impostor}
    done = smartiot(tmp_path, "devices", "register", "pump-7", "--type", "pump",
                    extra_env=spoofed)
    assert done.returncode == 0, done.stderr
    entries = json.loads(smartiot(tmp_path, "audit", "list", "--json").stdout)
    assert [(e["action"], e["actor"]) for e in entries] == [("device.register", ME)]
    shown = smartiot(tmp_path, "config", "show", extra_env=spoofed)
    assert f"you act as  : {ME} (the OS account)" in shown.stdout
