"""``smartiot alerts`` as support staff run it: a real subprocess on a real SQLite file."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys

import pytest

from core.model import Alert, AlertState
from core.store import Store


def smartiot(tmp_path, *args: str, user: str = "", extra_env: dict[str, str] | None = None):
    env = dict(os.environ)
    env.update({
        "SMARTIOT_CONFIG": str(tmp_path / "config.toml"),
        "SMARTIOT_DATA_DIR": str(tmp_path / "data"),
    })
    if user:
        env["SMARTIOT_USER"] = user
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "console.cli", "alerts", *args],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def store(tmp_path):
    (tmp_path / "data").mkdir()
    with Store.open(f"sqlite:///{tmp_path / 'data' / 'smartiot.db'}") as store:
        store.alerts.add(Alert("pump-1", "hot", "critical", "Hot pump: temp 91", 91.0,
                               alert_id="a1b2c3d4" + "0" * 24))
        store.alerts.add(Alert("pump-2", "hot", "warning", "Hot pump: temp 85", 85.0,
                               alert_id="a1b9" + "f" * 28))
        store.alerts.add(Alert("valve-7", "leak", "info", "Leak suspected",
                               alert_id="c0ffee" + "1" * 26))
        yield store


def test_list_filters_and_json(tmp_path, store):
    result = smartiot(tmp_path, "list", "--severity", "critical", "--severity", "warning",
                      "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {r["device_id"] for r in rows} == {"pump-1", "pump-2"}
    assert rows[0]["state"] == "active" and "created_at" in rows[0]
    text = smartiot(tmp_path, "list", "--device", "valve-7")
    assert text.returncode == 0 and "c0ffee11" in text.stdout and "pump" not in text.stdout


def test_ack_by_prefix_then_second_ack_names_who_did_it(tmp_path, store):
    me = pwd.getpwuid(os.getuid()).pw_name
    first = smartiot(tmp_path, "ack", "a1b2", "--comment", "on my way")
    assert first.returncode == 0, first.stderr
    assert "a1b2c3d4 acknowledged (pump-1" in first.stdout
    alert = store.alerts.get("a1b2c3d4" + "0" * 24)
    assert (alert.state, alert.acknowledged_by, alert.ack_comment) == (
        AlertState.ACKNOWLEDGED, me, "on my way")

    second = smartiot(tmp_path, "ack", "a1b2", "c0ffee", "--comment", "me too")
    assert second.returncode == 1
    when = alert.acknowledged_at.astimezone().strftime("%H:%M")
    assert f"a1b2: already acknowledged by {me} at {when}" in second.stderr
    assert "c0ffee11 acknowledged" in second.stdout  # the other alert still went through

    listed = smartiot(tmp_path, "list", "--state", "acknowledged")
    assert f"acknowledged by {me}" in listed.stdout


def test_a_claimed_user_is_not_an_identity(tmp_path, store):
    """Finding 7: `--user maria` (or SMARTIOT_USER) used to be recorded as maria."""
    me = pwd.getpwuid(os.getuid()).pw_name
    by_flag = smartiot(tmp_path, "ack", "a1b2", "--comment", "mine", "--user", "maria")
    by_env = smartiot(tmp_path, "ack", "c0ffee", "--comment", "mine", user="maria")
    assert by_flag.returncode == 0 and by_env.returncode == 0, by_flag.stderr + by_env.stderr
    assert "--user maria is recorded in the audit trail as a claim only" in by_flag.stderr
    assert store.alerts.get("a1b2c3d4" + "0" * 24).acknowledged_by == me
    assert store.alerts.get("c0ffee" + "1" * 26).acknowledged_by == me
    entries = store.audit.entries()
    assert [(e.actor, e.details["claimed_user"]) for e in entries] == [(me, "maria")] * 2
    assert all(e.details["role"] == "admin" for e in entries)  # the local profile's owner


def test_resolve_and_the_audit_chain(tmp_path, store):
    me = pwd.getpwuid(os.getuid()).pw_name
    assert smartiot(tmp_path, "ack", "a1b2", "--comment", "looking").returncode == 0
    result = smartiot(tmp_path, "resolve", "a1b2", "a1b9", "--comment", "fan replaced")
    assert result.returncode == 0, result.stderr
    assert store.alerts.get("a1b9" + "f" * 28).resolved_by == me
    again = smartiot(tmp_path, "resolve", "a1b2")
    assert again.returncode == 1 and f"a1b2: already resolved by {me}" in again.stderr

    entries = store.audit.entries()
    assert [(e.actor, e.action, e.subject[:4]) for e in entries] == [
        (me, "alert.acknowledge", "a1b2"),
        (me, "alert.resolve", "a1b2"),
        (me, "alert.resolve", "a1b9"),
    ]
    assert entries[1].details["comment"] == "fan replaced"
    assert store.audit.verify() is None  # the hash chain is intact


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("snooze", "a1b2"), "--for"),  # a snooze needs a length
        (("snooze", "a1b2", "--for", "soon"), "not a duration"),
        (("list", "--state", "sleeping"), "invalid choice"),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, store, args, fragment):
    result = smartiot(tmp_path, *args)
    assert result.returncode == 2
    assert fragment in result.stderr


def test_unknown_and_ambiguous_ids_fail_with_reasons(tmp_path, store):
    result = smartiot(tmp_path, "resolve", "a1", "zz")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("a1: ambiguous prefix, matches ")
    assert lines[1] == "zz: no alert with this id or prefix"
    assert store.audit.entries() == []
