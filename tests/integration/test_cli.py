"""The ``smartiot`` command as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from core import __version__


def smartiot(*args: str, env: dict[str, str] | None = None, tmp_path=None):
    full_env = dict(os.environ)
    if tmp_path is not None:
        full_env["SMARTIOT_CONFIG"] = str(tmp_path / "config.toml")
        full_env["SMARTIOT_DATA_DIR"] = str(tmp_path / "data")
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        capture_output=True, text=True, env=full_env, timeout=120,
    )


def test_version():
    result = smartiot("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"smartiot {__version__}"


def test_plugins_lists_builtins_with_their_hooks(tmp_path):
    result = smartiot("plugins", "--json", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    infos = {p["name"]: p for p in json.loads(result.stdout)}
    for name in ("local", "devices", "alerts", "firmware", "analytics", "audit", "users"):
        assert infos[name]["status"] == "loaded", infos[name]
        assert infos[name]["source"] == "built-in"
    assert "smartiot_register_pages" in infos["devices"]["hooks"]
    assert "smartiot_register_backends" in infos["local"]["hooks"]


def test_disable_plugins_by_environment(tmp_path):
    result = smartiot("plugins", tmp_path=tmp_path, env={"SMARTIOT_DISABLE_PLUGINS": "alerts"})
    assert result.returncode == 0
    line = next(li for li in result.stdout.splitlines() if li.startswith("alerts"))
    assert "blocked" in line
    assert "SMARTIOT_DISABLE_PLUGINS" in result.stdout


def test_invalid_config_is_a_message_not_a_traceback(tmp_path):
    (tmp_path / "config.toml").write_text('[profiles.lab]\nbroker = "ftp://nope"\n')
    result = smartiot("config", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(tmp_path / "config.toml") in result.stderr
    assert "profiles.lab.broker" in result.stderr


def test_profile_flag_selects_profile(tmp_path):
    result = smartiot("--profile", "lab", "config", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "profile     : lab" in result.stdout
    # The built-in lab profile guesses no team services (issue #16, item 7): no
    # 127.0.0.1 broker, no postgres superuser; a command on it says what to add.
    assert "postgres@127.0.0.1" not in result.stdout
    refused = smartiot("--profile", "lab", "devices", "list", tmp_path=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "names no broker and no database" in refused.stderr
    assert "[profiles.lab]" in refused.stderr and "api_url" in refused.stderr


def test_unknown_profile_flag_is_explained(tmp_path):
    result = smartiot("--profile", "mars", "config", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "profile 'mars' is not defined" in result.stderr


def test_gui_without_display_explains_instead_of_aborting(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["SMARTIOT_CONFIG"] = str(tmp_path / "config.toml")
    env["SMARTIOT_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run([sys.executable, "-m", "console.cli"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 3
    assert "no display found" in result.stderr
    assert "xvfb-run" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_command_migrates_the_default_sqlite_store(tmp_path):
    status = smartiot("db", "status", tmp_path=tmp_path)
    assert status.returncode == 1
    assert "revision : empty" in status.stdout
    upgraded = smartiot("db", "upgrade", tmp_path=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "up to date" in upgraded.stdout
    assert (tmp_path / "data" / "smartiot.db").exists()
