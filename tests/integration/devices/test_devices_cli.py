"""``smartiot devices list|show`` as a user runs them: real subprocesses, seeded SQLite."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from core.config import load_config
from core.model import Alert, Device, DeviceStatus, LinkStats, Location, Reading, Severity
from core.store import Store


def smartiot(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SMARTIOT_CONFIG=str(tmp_path / "config.toml"),
               SMARTIOT_DATA_DIR=str(tmp_path / "data"))
    return subprocess.run([sys.executable, "-m", "console.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.fixture
def seeded(tmp_path):
    url = load_config(tmp_path / "config.toml", tmp_path / "data", env={}).database_url
    assert url == f"sqlite:///{tmp_path / 'data' / 'smartiot.db'}"
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    with Store.open(url) as store:
        store.registry.upsert_many([
            Device("pump-1", name="North pump", device_type="pump", status=DeviceStatus.ONLINE,
                   organization="acme", tags=frozenset({"yard", "critical"}),
                   firmware_version="1.4.2", location=Location(52.5, 13.4, "Pump house"),
                   last_seen=now),
            Device("pump-2", name="South pump", device_type="pump",
                   status=DeviceStatus.ERROR, organization="acme"),
            Device("meter-1", name="Main meter", device_type="power_meter",
                   status=DeviceStatus.ONLINE, organization="globex", tags=frozenset({"yard"})),
        ])
        store.telemetry.write_batch([Reading("pump-1", "battery_pct", now, 77.0),
                                     Reading("pump-1", "rssi", now, -61.0)])
        store.alerts.add(Alert("pump-1", "temp-high", Severity.CRITICAL, "too hot", 91.0))
        store.link_stats.upsert_many([LinkStats("pump-1", last_seq=10, received=10, lost=2,
                                                hub_lost=7)])
    return tmp_path


def test_list_table_and_filters(seeded):
    result = smartiot(seeded, "devices", "list")
    assert result.returncode == 0, result.stderr
    assert "North pump" in result.stdout and "3 device(s)" in result.stdout
    result = smartiot(seeded, "devices", "list", "--status", "online", "--type", "pump")
    assert "pump-1" in result.stdout and "pump-2" not in result.stdout
    assert "meter-1" not in result.stdout


def test_list_json_and_csv_with_org_and_tag(seeded):
    result = smartiot(seeded, "devices", "list", "--org", "acme", "--json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["device_id"] for r in records] == ["pump-1", "pump-2"]
    assert records[0]["tags"] == ["critical", "yard"]
    assert records[0]["location"]["label"] == "Pump house"

    result = smartiot(seeded, "devices", "list", "--tag", "yard", "--csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["device_id"] for r in rows] == ["meter-1", "pump-1"]
    assert rows[1]["tags"] == "critical;yard"


def test_show_metadata_values_link_and_alerts(seeded):
    result = smartiot(seeded, "devices", "show", "pump-1")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in ("North pump", "Pump house", "battery_pct", "77", "rssi", "-61",
                 "received 10, lost 2", "7 lost while the hub was away", "Open alerts (1)",
                 "too hot"):
        assert text in out, text
    data = json.loads(smartiot(seeded, "devices", "show", "pump-1", "--json").stdout)
    assert data["latest"]["battery_pct"]["value"] == 77.0
    assert data["link"]["lost"] == 2 and data["link"]["hub_lost"] == 7
    assert data["open_alerts"][0]["severity"] == "critical"


def test_show_unknown_device_is_a_message(seeded):
    result = smartiot(seeded, "devices", "show", "nope")
    assert result.returncode == 1
    assert "not registered" in result.stderr and "Traceback" not in result.stderr
