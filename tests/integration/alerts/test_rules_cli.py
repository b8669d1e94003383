"""``smartiot rules`` as a team lead runs it: a real subprocess on a real SQLite
file; changes go through AlertService, so they are role-checked and audited."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.store import Store


def smartiot(tmp_path, *args: str, role: str = ""):
    env = dict(os.environ)
    env.update({"SMARTIOT_CONFIG": str(tmp_path / "config.toml"),
                "SMARTIOT_DATA_DIR": str(tmp_path / "data")})
    env.pop("SMARTIOT_ROLE", None)
    if role:
        env["SMARTIOT_ROLE"] = role
    return subprocess.run([sys.executable, "-m", "console.cli", "rules", *args],
                          capture_output=True, text=True, env=env, timeout=120,
                          cwd=tmp_path)


@pytest.fixture
def db(tmp_path):
    (tmp_path / "data").mkdir()
    return f"sqlite:///{tmp_path / 'data' / 'smartiot.db'}"


def test_defaults_export_edit_import_round_trip(tmp_path, db):
    empty = smartiot(tmp_path, "list")
    assert empty.returncode == 0 and "rules add --defaults" in empty.stdout
    added = smartiot(tmp_path, "add", "--defaults")
    assert added.returncode == 0, added.stderr
    assert added.stdout.count("added ") == 5
    again = smartiot(tmp_path, "add", "--defaults")
    assert again.returncode == 1 and "already has alert rules" in again.stderr

    for fmt in ("toml", "json"):
        out = smartiot(tmp_path, "export", f"team.{fmt}")
        assert out.returncode == 0, out.stderr
        same = smartiot(tmp_path, "import", f"team.{fmt}")
        assert same.returncode == 0, same.stderr
        assert "0 added, 0 updated, 5 unchanged" in same.stdout

    text = (tmp_path / "team.toml").read_text()
    text = text.replace("limit = 15.0", "limit = 20.0")
    text += ('\n[[rules]]\nid = "team-humidity"\nname = "Humidity high"\ntype = "threshold"\n'
             'params = { metric = "humidity", op = "above", limit = 90.0 }\n')
    (tmp_path / "team.toml").write_text(text)
    imported = smartiot(tmp_path, "import", "team.toml")
    assert imported.returncode == 0, imported.stderr
    assert "1 added, 1 updated, 4 unchanged" in imported.stdout

    with Store.open(db) as store:
        battery = store.rules.get("demo-battery-low")
        assert battery.params["limit"] == 20.0 and battery.version == 2
        assert store.rules.get("team-humidity").name == "Humidity high"
        actions = [(e.action, e.subject) for e in store.audit.entries()]
    assert ("rule.edit", "demo-battery-low") in actions
    assert ("rule.add", "team-humidity") in actions
    assert sum(a == "rule.add" for a, _ in actions) == 6  # nothing for unchanged rules

    listed = json.loads(smartiot(tmp_path, "list", "--json").stdout)
    assert {r["id"] for r in listed} >= {"team-humidity", "demo-no-data"}


def test_bad_file_names_file_rule_and_field_and_changes_nothing(tmp_path, db):
    (tmp_path / "bad.toml").write_text(
        '[[rules]]\nid = "ok-one"\nname = "Fine"\ntype = "no_data"\nparams = { minutes = 5 }\n\n'
        '[[rules]]\nid = "bad-one"\nname = "Hot pumps"\ntype = "threshold"\n'
        'params = { metric = "temperature", op = "above", limit = "hot" }\n')
    result = smartiot(tmp_path, "import", "bad.toml")
    assert result.returncode == 1
    assert "bad.toml: rule 2: rule 'Hot pumps' (bad-one)" in result.stderr
    assert "limit" in result.stderr
    with Store.open(db) as store:
        assert store.rules.list() == []


def test_support_may_list_but_not_change_rules_and_the_refusal_is_audited(tmp_path, db):
    (tmp_path / "one.json").write_text(json.dumps({"rules": [
        {"id": "r1", "name": "Silent", "type": "no_data", "params": {"minutes": 5}}]}))
    refused = smartiot(tmp_path, "add", "one.json", role="support")
    assert refused.returncode == 1 and "may not add, edit or delete alert rules" in refused.stderr
    assert smartiot(tmp_path, "list", role="support").returncode == 0
    with Store.open(db) as store:
        assert store.rules.list() == []
        denied = [e for e in store.audit.entries() if e.action == "rule.add"]
    assert denied and denied[0].details["outcome"] == "denied"
