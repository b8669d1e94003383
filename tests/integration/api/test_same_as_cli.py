"""The same action through the CLI and through the REST API leaves the same
stored result and the same audit entry: both front ends call one use case."""

from __future__ import annotations

import hashlib
import os
import pwd
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.crypto.keystore import CodeSigningKeys
from core.model import Alert, Device, Firmware, SemVer, Severity
from core.model.roles import Role
from core.ports.signing_keys import TrustedKey
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
    user = pwd.getpwuid(os.getuid()).pw_name
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


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_deployment_equal_through_cli_and_api(store_url: str, open_store, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # One passphrase for the code-signing keys of this process and the CLI's.
    monkeypatch.setenv("SMARTIOT_CODESIGN_PASSPHRASE", "correct horse battery staple")
    cli_db = f"sqlite:///{tmp_path / 'cli.db'}"
    cli_store = Store.open(cli_db)
    api_store = open_store()
    user = pwd.getpwuid(os.getuid()).pw_name
    image = b"pump firmware 2.0.0" * 64
    try:
        # Each front end signs with the code-signing key in its own data directory.
        for store, keys in ((cli_store, tmp_path / "cli" / "data" / "codesign"),
                            (api_store, tmp_path / "api" / "codesign")):
            signing = CodeSigningKeys(keys)
            signature, key_id = signing.sign(image)
            # As an admin's `smartiot firmware keys add` would: a team signs only with
            # keys it trusts.
            store.trusted_keys.add(TrustedKey(key_id, user, signing.public_path.read_bytes(),
                                              added_by="admin", added_at=datetime.now(UTC)))
            firmware = Firmware(SemVer.parse("2.0.0"), "pump", len(image),
                                hashlib.sha256(image).hexdigest(), signature, key_id)
            for n in (1, 2):
                store.registry.upsert(Device(f"pump-{n}", device_type="pump",
                                             organization="demo"))
            store.firmware.add(firmware, image)
        _cli(tmp_path, cli_db, Role.ENGINEER, "deploy", "create", "--firmware",
             firmware.firmware_id, "--devices", "pump-1,pump-2", "--description", "spring")

        gen = start_api(api_store, tmp_path / "api")
        api = next(gen)
        try:
            reply = api.client.call("POST", "/firmware/deployments", {
                "firmware_id": firmware.firmware_id, "description": "spring",
                "target": {"kind": "list", "device_ids": ["pump-1", "pump-2"]}},
                role=Role.ENGINEER, user=user, org="demo")
            assert reply.status == 201, reply.body
        finally:
            gen.close()

        (cli_dep,), (api_dep,) = cli_store.deployments.list(), api_store.deployments.list()
        assert (api_dep.firmware_id, api_dep.targets, api_dep.status, api_dep.created_by,
                api_dep.description, api_dep.target_spec, api_dep.config) == (
            cli_dep.firmware_id, cli_dep.targets, cli_dep.status, cli_dep.created_by,
            cli_dep.description, cli_dep.target_spec, cli_dep.config)

        def trail(store: Store, deployment_id: str) -> list[tuple[Any, ...]]:
            return [(a, act, "<id>" if s == deployment_id else s, d)
                    for a, act, s, d in _trail(store) if not act.startswith("audit.")]

        api_trail = trail(api_store, api_dep.deployment_id)
        assert [e[1] for e in api_trail] == ["deployment.create"]
        assert api_trail == trail(cli_store, cli_dep.deployment_id)
    finally:
        cli_store.close()
