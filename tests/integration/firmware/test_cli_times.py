"""Every command prints a moment the same way for a person: ISO 8601 to the
second in the machine's zone with its offset. ``alerts list`` printed
"2026-12-05 01:02" while ``devices show`` printed UTC ISO, and ``firmware
list`` printed no header row where the other listings do. --json keeps the
stored ISO values. Real subprocesses on a SQLite store, in a zone that is
not UTC (TZ=Asia/Kolkata, +05:30)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.model import Alert, Device, DeviceStatus, Severity
from core.store import Store

LOCAL_ISO = re.compile(r"\b2026-03-01T14:02:03\+05:30\b")  # 08:32:03 UTC in Kolkata
SHORT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")  # the old "2026-03-01 14:02"


@pytest.fixture
def env(tmp_path: Path, file_keyring: Path) -> dict[str, str]:
    out = dict(os.environ)
    out.update(SMARTIOT_CONFIG=str(tmp_path / "config.toml"),
               SMARTIOT_DATA_DIR=str(tmp_path / "data"), TZ="Asia/Kolkata")
    (tmp_path / "data").mkdir()
    at = datetime(2026, 3, 1, 8, 32, 3, tzinfo=UTC)
    store = Store.open(f"sqlite:///{tmp_path / 'data' / 'smartiot.db'}")
    store.registry.upsert(Device("pump-1", device_type="pump", status=DeviceStatus.ONLINE,
                                 organization="demo", created_at=at, updated_at=at,
                                 last_seen=at))
    store.alerts.add(Alert("pump-1", rule_id="temperature-high", severity=Severity.WARNING,
                           message="temperature above 70 °C", value=74.5, created_at=at,
                           updated_at=at))
    store.close()
    return out


def smartiot(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "console.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_commands_print_times_alike_and_firmware_list_has_a_header(
        env: dict[str, str], tmp_path: Path) -> None:
    shown = smartiot(env, "devices", "show", "pump-1")
    assert re.search(r"Registered\s+" + LOCAL_ISO.pattern, shown), shown
    assert re.search(r"Last seen\s+" + LOCAL_ISO.pattern, shown), shown
    listed = smartiot(env, "devices", "list")
    assert LOCAL_ISO.search(listed), listed
    alerts = smartiot(env, "alerts", "list")
    assert LOCAL_ISO.search(alerts) and not SHORT.search(alerts), alerts

    # machine-readable output is unchanged: the stored value's ISO form, and CSV
    assert json.loads(smartiot(env, "alerts", "list", "--json"))[0]["created_at"] == \
        "2026-03-01T08:32:03+00:00"
    csv_rows = smartiot(env, "devices", "list", "--csv").splitlines()
    assert csv_rows[1].endswith(",2026-03-01T08:32:03+00:00"), csv_rows

    image = tmp_path / "pump-1.1.0.bin"
    image.write_bytes(os.urandom(4096))
    smartiot(env, "firmware", "add", str(image), "--version", "1.1.0", "--type", "pump",
             "--notes", "bearing fix\nsecond line")
    lines = smartiot(env, "firmware", "list").splitlines()
    assert lines[0].split()[:4] == ["FIRMWARE", "SIZE", "SIGNATURE", "SHA-256"], lines
    assert "ADDED" in lines[0] and "NOTES" in lines[0]
    assert lines[1].startswith("pump@1.1.0") and lines[1].endswith("bearing fix"), lines
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+05:30", lines[1]), lines
    assert len(lines) == 2, "one line per image"
