"""`smartiot secrets` and `smartiot config` on a machine without an OS keyring."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def smartiot(tmp_path: Path, *args: str, stdin: str = "",
             backend: str = "keyring.backends.fail.Keyring") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTIOT_SECRET")}
    env.update(SMARTIOT_DATA_DIR=str(tmp_path / "data"),
               SMARTIOT_CONFIG=str(tmp_path / "config.toml"),
               PYTHON_KEYRING_BACKEND=backend, XDG_DATA_HOME=str(tmp_path / "xdg"))
    return subprocess.run([sys.executable, "-m", "console.cli", *args], input=stdin,
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def test_set_has_list_delete_and_config_name_the_backend(tmp_path: Path) -> None:
    store = tmp_path / "data" / "secrets.enc"
    out = smartiot(tmp_path, "secrets", "set", "broker.password", stdin="s3cret-value\n")
    assert out.returncode == 0, out.stderr
    assert f"stored broker.password in the encrypted file {store}" in out.stdout
    assert "s3cret-value" not in out.stdout + out.stderr
    assert smartiot(tmp_path, "secrets", "has", "broker.password").returncode == 0
    listed = smartiot(tmp_path, "secrets", "list")
    assert "broker.password" in listed.stdout.splitlines()
    assert "s3cret-value" not in listed.stdout
    config = smartiot(tmp_path, "config")
    line = next(x for x in config.stdout.splitlines() if x.startswith("secrets"))
    assert f"encrypted file {store}" in line and "NOT against copying the whole data dir" in line
    assert smartiot(tmp_path, "secrets", "delete", "broker.password").returncode == 0
    missing = smartiot(tmp_path, "secrets", "has", "broker.password")
    assert missing.returncode == 1 and "not set" in missing.stdout


def test_config_says_a_plaintext_keyring_was_refused(tmp_path: Path) -> None:
    config = smartiot(tmp_path, "config", backend="keyrings.alt.file.PlaintextKeyring")
    line = next(x for x in config.stdout.splitlines() if x.startswith("secrets"))
    assert "encrypted file" in line and "PlaintextKeyring" in line


def test_passphrase_moves_the_store_off_the_key_file(tmp_path: Path) -> None:
    assert smartiot(tmp_path, "secrets", "set", "a", stdin="b\n").returncode == 0
    changed = smartiot(tmp_path, "secrets", "passphrase", stdin="my long passphrase\n")
    assert changed.returncode == 0, changed.stderr
    assert not (tmp_path / "data" / "secrets.key").exists()
    locked = smartiot(tmp_path, "secrets", "has", "a")
    assert locked.returncode == 1 and "SMARTIOT_SECRETS_PASSPHRASE" in locked.stderr
