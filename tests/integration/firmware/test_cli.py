"""``smartiot firmware`` and ``smartiot deploy`` as engineers run them in CI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.model import Device
from core.store import Store


@pytest.fixture
def env(tmp_path: Path, file_keyring: Path) -> dict[str, str]:
    out = dict(os.environ)
    out["SMARTIOT_CONFIG"] = str(tmp_path / "config.toml")
    out["SMARTIOT_DATA_DIR"] = str(tmp_path / "data")
    (tmp_path / "data").mkdir()
    store = Store.open(f"sqlite:///{tmp_path / 'data' / 'smartiot.db'}")
    store.registry.upsert_many([Device(f"pump-{i}", device_type="pump", firmware_version="1.0.0",
                                       organization="demo")  # the profile's organization
                                for i in range(6)])
    store.close()
    return out


def smartiot(env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console.cli", *args], capture_output=True,
                          text=True, env={**env, **extra}, timeout=120)


def test_firmware_and_deploy_round_trip(env: dict[str, str], tmp_path: Path) -> None:
    image = tmp_path / "pump-1.1.0.bin"
    image.write_bytes(os.urandom(50_000))
    added = smartiot(env, "firmware", "add", str(image), "--version", "1.1.0", "--type", "pump",
                     "--notes", "bearing fix")
    assert added.returncode == 0, added.stderr
    assert "added pump@1.1.0" in added.stdout
    listed = json.loads(smartiot(env, "firmware", "list", "--json").stdout)
    assert [(f["firmware_id"], f["signed"], f["size"]) for f in listed] == [
        ("pump@1.1.0", True, 50_000)]
    verified = smartiot(env, "firmware", "verify")
    assert verified.returncode == 0 and "OK" in verified.stdout
    key = smartiot(env, "firmware", "key")
    assert key.stdout.startswith("-----BEGIN PUBLIC KEY-----")

    dry = smartiot(env, "deploy", "create", "--firmware", "pump@1.1.0", "--group", "pump",
                   "--dry-run")
    assert dry.returncode == 0 and "6 devices targeted" in dry.stdout
    created = smartiot(env, "deploy", "create", "--firmware", "pump@1.1.0", "--group", "pump",
                       "--exponential", "10,2,5", "--abort", "FAILED:10:3", "--timeout", "30",
                       "--retries", "FAILED:1")
    assert created.returncode == 0, created.stderr
    deployment_id = created.stdout.split("created ")[1].split(":")[0]
    assert "; manifest signed by key " in created.stdout and "valid until " in created.stdout
    text = smartiot(env, "deploy", "status", deployment_id).stdout
    assert "manifest signed by key" in text
    short = smartiot(env, "deploy", "create", "--firmware", "pump@1.1.0", "--group", "pump",
                     "--manifest-days", "0.0001")
    assert short.returncode == 1 and "manifest validity 8 s must be between 60 s" in short.stderr
    status = json.loads(smartiot(env, "deploy", "status", deployment_id, "--json").stdout)
    assert status["status"] == "SCHEDULED" and status["counts"] == {"PENDING": 6}
    assert status["config"]["abortConfig"]["criteriaList"][0]["thresholdPercentage"] == 10
    assert status["config"]["jobExecutionsRolloutConfig"]["exponentialRate"][
        "incrementFactor"] == 2
    canceled = smartiot(env, "deploy", "cancel", deployment_id)
    assert canceled.returncode == 0 and "CANCELED" in canceled.stdout


def test_technicians_are_refused_by_the_service(env: dict[str, str], tmp_path: Path) -> None:
    image = tmp_path / "fw.bin"
    image.write_bytes(b"x" * 100)
    refused = smartiot(env, "firmware", "add", str(image), "--version", "1.0.1", "--type",
                       "pump", SMARTIOT_ROLE="technician")
    assert refused.returncode == 1
    assert "may not import firmware" in refused.stderr and "Traceback" not in refused.stderr
    assert json.loads(smartiot(env, "firmware", "list", "--json").stdout) == []


@pytest.mark.parametrize(("flag", "value", "named"), [
    ("--abort", "FAILED:ten:20", "--abort 'FAILED:ten:20'"),
    ("--abort", "BROKEN:10:20", "failure type 'BROKEN'"),
    ("--exponential", "10,2", "--exponential '10,2'"),
    ("--retries", "REJECTED:2", "cannot be retried"),
    ("--rate", "5000", "maximum per minute"),
])
def test_bad_rollout_flags_name_the_problem(env: dict[str, str], tmp_path: Path, flag: str,
                                            value: str, named: str) -> None:
    image = tmp_path / "fw.bin"
    image.write_bytes(b"y" * 100)
    assert smartiot(env, "firmware", "add", str(image), "--version", "1.2.0", "--type",
                    "pump").returncode == 0
    result = smartiot(env, "deploy", "create", "--firmware", "pump@1.2.0", "--group", "pump",
                      flag, value)
    assert result.returncode == 1
    assert named in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
