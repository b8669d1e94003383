"""``smartiot users`` as an admin runs it on the one-process console: the
directory changes, refusals name the role, and once a person has an entry
the console acts with the entry's role (and refuses a disabled account)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.audit.test_audit_cli import ME, smartiot


def test_an_admin_keeps_the_directory_and_it_decides_the_role(tmp_path: Path) -> None:
    added = smartiot(tmp_path, "users", "add", "maria", "--role", "support", "--org", "acme")
    assert added.returncode == 0, added.stderr
    assert "maria" in added.stdout and "support" in added.stdout
    bad = smartiot(tmp_path, "users", "add", "no spaces", "--role", "support")
    assert bad.returncode == 2 and "name:" in bad.stderr
    refused = smartiot(tmp_path, "users", "add", "eve", "--role", "admin", role="engineer")
    assert refused.returncode == 1 and "may not list, add" in refused.stderr
    assert smartiot(tmp_path, "users", "role", "maria", "technician").returncode == 0
    listed = json.loads(smartiot(tmp_path, "users", "list", "--json").stdout)
    assert [(u["name"], u["role"], u["organization"]) for u in listed] == [
        ("maria", "technician", "acme")]

    # The console's own account gets an entry: from now on its role is the entry's.
    assert smartiot(tmp_path, "users", "add", ME, "--role", "engineer").returncode == 0
    demoted = smartiot(tmp_path, "users", "list")
    assert demoted.returncode == 1 and f"{ME} (engineer) may not" in demoted.stderr
    trail = json.loads(smartiot(tmp_path, "audit", "list", "--json").stdout)
    assert [(e["action"], e["subject"], e["details"].get("outcome", "done"))
            for e in trail if e["action"].startswith("user.")] == [
        ("user.add", "maria", "done"), ("user.add", "eve", "denied"),
        ("user.role", "maria", "done"), ("user.add", ME, "done"),
        ("user.list", "users", "denied")]
