"""The same action through the CLI and through the REST API leaves the same
stored result and the same audit entry: both front ends call one use case."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.model import Alert, Severity
from core.model.roles import Role
from core.store import Store
from tests.integration.api.conftest import start_api

pytestmark = pytest.mark.postgres


def _cli(tmp_path: Path, database: str, role: Role, *args: str) -> None:
    env = {**os.environ, "SMARTIOT_CONFIG": str(tmp_path / "cli" / "config.toml"),
           "SMARTIOT_DATA_DIR": str(tmp_path / "cli" / "data"), "SMARTIOT_ROLE": role.value}
    result = subprocess.run([sys.executable, "-m", "console.cli", *args, "--database", database],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr


def _trail(store: Store) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [(e.actor, e.action, e.subject, e.details) for e in store.audit.search(None)]


def _device_record(store: Store, device_id: str) -> dict[str, Any]:
    d = store.registry.get(device_id)
    return {"name": d.name, "type": d.device_type, "org": d.organization,
            "tags": sorted(d.tags), "status": d.status.value}


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_register_and_acknowledge_equal_through_cli_and_api(store_url: str, open_store,
                                                            tmp_path: Path) -> None:
    # Two databases: one the CLI acts on, one the API acts on. The CLI acts in its
    # profile's organization ("demo"), so the token carries the same one.
    cli_db = f"sqlite:///{tmp_path / 'cli.db'}"
    cli_store = Store.open(cli_db)
    api_store = open_store()
    user = getpass.getuser()
    alert = Alert("pump-7", "rule-high", Severity.WARNING, "pressure high", 9.5)
    try:
        _cli(tmp_path, cli_db, Role.TECHNICIAN, "devices", "register", "pump-7", "--type",
             "pump", "--name", "Pump 7", "--tag", "hall-a", "--org", "demo")
        cli_store.alerts.add(alert)
        _cli(tmp_path, cli_db, Role.SUPPORT, "alerts", "ack", alert.alert_id,
             "--comment", "on my way")

        gen = start_api(api_store, tmp_path / "api")
        api = next(gen)
        try:
            reply = api.client.call("POST", "/devices", {
                "device_id": "pump-7", "device_type": "pump", "name": "Pump 7",
                "tags": ["hall-a"]}, role=Role.TECHNICIAN, user=user, org="demo")
            assert reply.status == 201, reply.body
            api_store.alerts.add(alert)
            reply = api.client.call("POST", f"/alerts/{alert.alert_id}/acknowledge",
                                    {"comment": "on my way"}, role=Role.SUPPORT, user=user,
                                    org="demo")
            assert reply.status == 200, reply.body
        finally:
            gen.close()

        assert _device_record(api_store, "pump-7") == _device_record(cli_store, "pump-7")
        stored_cli, stored_api = cli_store.alerts.get(alert.alert_id), \
            api_store.alerts.get(alert.alert_id)
        assert (stored_api.state, stored_api.acknowledged_by, stored_api.ack_comment,
                stored_api.version) == (stored_cli.state, stored_cli.acknowledged_by,
                                        stored_cli.ack_comment, stored_cli.version)
        cli_trail = [e for e in _trail(cli_store) if not e[1].startswith("audit.")]
        api_trail = [e for e in _trail(api_store) if not e[1].startswith("audit.")]
        assert [e[1] for e in api_trail] == ["device.register", "alert.acknowledge"]
        assert api_trail == cli_trail
    finally:
        cli_store.close()
