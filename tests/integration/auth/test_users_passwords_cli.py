"""``smartiot users`` keeps people's passwords as an admin runs it (the hub's
machine, against the store): a password from stdin, never an argument; the
hash in the database is argon2id and printed nowhere; a person who is not an
admin is refused with exit code 1 and the refusal is audited."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from core.crypto.passwords import verify_password


def smartiot(tmp_path: Path, *args: str, stdin: str = "", role: str = "admin"
             ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update({"SMARTIOT_CONFIG": str(tmp_path / "config.toml"),
                "SMARTIOT_DATA_DIR": str(tmp_path / "data"),
                "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
                "SMARTIOT_ROLE": role})
    return subprocess.run([sys.executable, "-m", "console.cli", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=120)


def stored_hash(tmp_path: Path, name: str) -> str | None:
    db = next((tmp_path / "data").rglob("*.db"))
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()
    return None if row is None else row[0]


def test_an_admin_adds_people_with_passwords_and_resets_them(tmp_path: Path) -> None:
    added = smartiot(tmp_path, "users", "add", "maria", "--role", "engineer", "--org", "acme",
                     "--password-stdin", stdin="maria's first secret\n")
    assert added.returncode == 0, added.stderr
    assert "maria" in added.stdout and "secret" not in added.stdout + added.stderr
    first = stored_hash(tmp_path, "maria")
    assert first is not None and first.startswith("$argon2id$")
    assert verify_password(first, "maria's first secret")

    # no terminal and no --password-stdin: added without a password, and told so
    bare = smartiot(tmp_path, "users", "add", "kim", "--role", "support")
    assert bare.returncode == 0 and "no password yet" in bare.stderr
    assert stored_hash(tmp_path, "kim") is None

    weak = smartiot(tmp_path, "users", "passwd", "kim", "--password-stdin", stdin="short\n")
    assert weak.returncode == 2 and weak.stderr.startswith("smartiot users: password:")
    assert "short" not in weak.stderr.split(":", 2)[2].replace("characters", "")
    reset = smartiot(tmp_path, "users", "passwd", "maria", "--password-stdin",
                     stdin="a second secret here\n")
    assert reset.returncode == 0, reset.stderr
    assert verify_password(stored_hash(tmp_path, "maria"), "a second secret here")
    assert not verify_password(stored_hash(tmp_path, "maria"), "maria's first secret")
    no_tty = smartiot(tmp_path, "users", "passwd", "maria")
    assert no_tty.returncode == 2 and "--password-stdin" in no_tty.stderr

    assert smartiot(tmp_path, "users", "set-role", "maria", "technician").returncode == 0
    assert smartiot(tmp_path, "users", "disable", "kim").returncode == 0
    listed = json.loads(smartiot(tmp_path, "users", "list", "--json").stdout)
    assert [(u["name"], u["role"], u["disabled"]) for u in listed] == [
        ("kim", "support", True), ("maria", "technician", False)]
    assert "argon2" not in json.dumps(listed)

    refused = smartiot(tmp_path, "users", "passwd", "maria", "--password-stdin",
                       stdin="taking over now!\n", role="engineer")
    assert refused.returncode == 1 and "not allowed" in refused.stderr
    assert verify_password(stored_hash(tmp_path, "maria"), "a second secret here")
    trail = json.loads(smartiot(tmp_path, "audit", "list", "--json").stdout)
    passwords = [(e["subject"], e["details"].get("outcome", "done"))
                 for e in trail if e["action"] == "user.password"]
    assert sorted(passwords) == [("maria", "denied"), ("maria", "done")]
    assert "argon2" not in json.dumps(trail)


def _on_a_terminal(tmp_path: Path, args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run smartiot in a pseudo-terminal (its controlling tty, as a person's
    shell gives it) and answer each password prompt in turn."""
    env = {**os.environ, "SMARTIOT_CONFIG": str(tmp_path / "config.toml"),
           "SMARTIOT_DATA_DIR": str(tmp_path / "data"),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "SMARTIOT_ROLE": "admin"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: replace it with smartiot at once
        os.execve(sys.executable, [sys.executable, "-m", "console.cli", *args], env)
    output = b""
    pending = list(answers)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.3)
        if not ready:
            # Answer a prompt once the terminal is quiet: getpass turns echo off
            # (flushing input) after writing it, so an early answer is lost.
            asked = output.count(b"Password")
            if pending and asked > len(answers) - len(pending) and \
                    output.rstrip().endswith(b":"):
                os.write(fd, pending.pop(0).encode() + b"\n")
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_a_terminal_is_asked_for_the_password_twice(tmp_path: Path) -> None:
    code, shown = _on_a_terminal(tmp_path, ["users", "add", "zoe", "--role", "support"],
                                 ["zoe's own secret", "zoe's own secret"])
    assert code == 0, shown
    assert shown.count("Password") == 2 and "zoe's own secret" not in shown  # not echoed
    assert verify_password(stored_hash(tmp_path, "zoe"), "zoe's own secret")
    code, shown = _on_a_terminal(tmp_path, ["users", "passwd", "zoe"],
                                 ["a new secret here", "a typo in it here"])
    assert code == 2 and "the two entries differ" in shown
    assert verify_password(stored_hash(tmp_path, "zoe"), "zoe's own secret")
