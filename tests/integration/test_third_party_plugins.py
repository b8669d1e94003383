"""A third-party plugin installed with pip is discovered through its entry point,
and a broken one is isolated, both in the CLI and in process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.plugins import PluginManager, PluginStatus


def _env(site: Path, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    repo_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([str(site), repo_root])
    env["SMARTIOT_ENTRY_POINTS"] = "1"
    env["SMARTIOT_CONFIG"] = str(tmp_path / "config.toml")
    env["SMARTIOT_DATA_DIR"] = str(tmp_path / "data")
    return env


def test_cli_discovers_installed_plugin_and_reports_broken_one(plugin_site, tmp_path):
    result = subprocess.run([sys.executable, "-m", "console.cli", "plugins", "--json"],
                            capture_output=True, text=True, env=_env(plugin_site, tmp_path),
                            timeout=120)
    assert result.returncode == 0, result.stderr
    infos = {p["name"]: p for p in json.loads(result.stdout)}
    assert infos["example"]["status"] == "loaded"
    assert "smartiot-example-plugin 1.2.3" in infos["example"]["source"]
    assert infos["broken"]["status"] == "failed"
    assert "ModuleNotFoundError" in infos["broken"]["error"]
    assert "smartiot_dependency_that_is_not_installed" in infos["broken"]["error"]
    assert infos["devices"]["status"] == "loaded"


def test_plugin_subcommand_runs(plugin_site, tmp_path):
    result = subprocess.run([sys.executable, "-m", "console.cli", "example-hello", "world"],
                            capture_output=True, text=True, env=_env(plugin_site, tmp_path),
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "example says hello to world"


def test_in_process_discovery_adds_page_and_isolates_broken(installed_plugins):
    pm = PluginManager(entry_points=True, blocked=())
    assert pm.info("example").status is PluginStatus.LOADED
    assert pm.info("example").version == "1.2.3"
    assert pm.info("broken").status is PluginStatus.FAILED
    page_ids = [p.page_id for p in pm.pages()]
    assert page_ids == ["devices", "alerts", "rejected", "firmware", "analytics", "audit",
                        "users", "example"]


def test_entry_point_discovery_can_be_switched_off(installed_plugins):
    pm = PluginManager(entry_points=False, blocked=())
    assert "example" not in {i.name for i in pm.infos()}


def test_blocked_third_party_plugin_is_not_imported(installed_plugins):
    pm = PluginManager(entry_points=True, blocked=("broken",))
    assert pm.info("broken").status is PluginStatus.BLOCKED
