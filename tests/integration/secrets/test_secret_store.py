"""The secret store, each case in its own interpreter: keyring picks its backend once
per process from PYTHON_KEYRING_BACKEND, as it does for a user, and files are real."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FAIL = "keyring.backends.fail.Keyring"
PLAINTEXT = "keyrings.alt.file.PlaintextKeyring"
SECURE = "tests.integration.secrets.memory_keyring.SecureTestKeyring"
# The test keyring is trusted only by processes that are told to, as a stand-in for
# the OS keyrings a CI machine lacks; without this line it is refused (see below).
TRUST_TEST_KEYRING = ("import core.secrets\ncore.secrets.SECURE_KEYRING_MODULES += "
                      "('tests.integration.secrets.memory_keyring',)\n")


def run(code: str, data_dir: Path, backend: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("SMARTIOT_SECRET", "SMARTIOT_CODESIGN"))}
    environ.update(SMARTIOT_DATA_DIR=str(data_dir), PYTHON_KEYRING_BACKEND=backend,
                   XDG_DATA_HOME=str(data_dir.parent / "xdg"), PYTHONPATH=str(ROOT),
                   SMARTIOT_TEST_KEYRING_FILE=str(data_dir.parent / "os-keyring.json"))
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", "from core.secrets import *\n" + code],
        capture_output=True, text=True, env=environ, cwd=ROOT, stdin=subprocess.DEVNULL,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_without_keyring_secrets_go_to_an_encrypted_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = ok(run("set_secret('broker.password', 'hunter2-value')\n"
                 "print(describe_backend())", data, FAIL))
    assert f"encrypted file {data / 'secrets.enc'}" in out
    assert "key file" in out and "NOT against copying the whole data dir" in out
    raw = (data / "secrets.enc").read_bytes()
    assert b"hunter2" not in raw and b"broker.password" not in raw
    for name in ("secrets.enc", "secrets.key"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600
    # a second process reads it back, lists names only, deletes
    out = ok(run("print(get_secret('broker.password')); print(list_secrets());"
                 "print(delete_secret('broker.password')); print(get_secret('broker.password'))",
                 data, FAIL))
    assert out.split("\n")[:4] == ["hunter2-value", "['broker.password']", "True", "None"]


def test_plaintext_keyring_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = ok(run("set_secret('codesign-passphrase', 'sign-me'); print(describe_backend())",
                 data, PLAINTEXT))
    assert "encrypted file" in out and "PlaintextKeyring" in out and "not used" in out
    assert (data / "secrets.enc").exists()
    plaintext_files = list((tmp_path / "xdg").rglob("*.cfg")) if (tmp_path / "xdg").exists() else []
    assert not any(b"sign-me" in p.read_bytes() for p in plaintext_files)
    forced = run("get_secret('x')", data, PLAINTEXT, SMARTIOT_SECRETS_BACKEND="keyring")
    assert forced.returncode != 0 and "no secure OS keyring" in forced.stderr


def test_a_custom_plaintext_keyring_class_is_refused(tmp_path: Path) -> None:
    """A class named in PYTHON_KEYRING_BACKEND that writes secrets in the clear, with a
    positive priority and from no known-bad module: only an allow-list refuses it."""
    data = tmp_path / "data"
    out = ok(run("set_secret('broker.fleet_secret', 'fleet-s3cret'); print(describe_backend())",
                 data, SECURE))
    assert out.startswith("encrypted file"), out
    assert "OS keyring not used" in out and "SecureTestKeyring is not a known secure keyring" in out
    assert (data / "secrets.enc").exists()
    plain = tmp_path / "os-keyring.json"
    assert not plain.exists() or b"fleet-s3cret" not in plain.read_bytes()
    forced = run("get_secret('x')", data, SECURE, SMARTIOT_SECRETS_BACKEND="keyring")
    assert forced.returncode != 0 and "not a known secure keyring" in forced.stderr


def test_a_secure_keyring_is_used_and_described(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = ok(run(TRUST_TEST_KEYRING + "set_secret('broker.password', 'pw');"
                 "print(describe_backend()); print(list_secrets())", data, SECURE))
    assert out.startswith("OS keyring (")
    assert "['broker.password']" in out
    assert not (data / "secrets.enc").exists()
    stored = json.loads((tmp_path / "os-keyring.json").read_text())
    assert stored["smartiot/broker.password"] == "pw"


def test_environment_passphrase_and_wrong_passphrase(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ok(run("set_secret('lab.database', 'pg-pass')", data, FAIL,
           SMARTIOT_SECRETS_PASSPHRASE="correct horse"))
    assert not (data / "secrets.key").exists()
    assert ok(run("print(get_secret('lab.database'))", data, FAIL,
                  SMARTIOT_SECRETS_PASSPHRASE="correct horse")).strip() == "pg-pass"
    wrong = run("get_secret('lab.database')", data, FAIL,
                SMARTIOT_SECRETS_PASSPHRASE="wrong horse")
    assert wrong.returncode != 0
    assert "SecretsLocked" in wrong.stderr
    assert f"cannot open {data / 'secrets.enc'}" in wrong.stderr
    assert "SMARTIOT_SECRETS_PASSPHRASE does not unlock it" in wrong.stderr
    assert "pg-pass" not in wrong.stderr
    missing = run("get_secret('lab.database')", data, FAIL)
    assert missing.returncode != 0 and "set SMARTIOT_SECRETS_PASSPHRASE" in missing.stderr


def test_altered_file_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ok(run("set_secret('a', 'b')", data, FAIL))
    doc = json.loads((data / "secrets.enc").read_text())
    doc["header"]["kdf"]["n"] = 2
    (data / "secrets.enc").write_text(json.dumps(doc))
    result = run("get_secret('a')", data, FAIL)
    assert result.returncode != 0 and "does not unlock it" in result.stderr


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ok(run("set_secret('a', 'b')", data, FAIL))
    (data / "secrets.key").chmod(0o644)
    result = run("get_secret('a')", data, FAIL)
    assert result.returncode != 0 and "chmod 600" in result.stderr


def test_rekey_moves_to_a_passphrase_and_drops_the_key_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ok(run("set_secret('a', 'b')", data, FAIL))
    ok(run("change_passphrase('typed passphrase')", data, FAIL))
    assert not (data / "secrets.key").exists()
    assert "asked in a terminal" in ok(run("print(describe_backend())", data, FAIL))
    assert ok(run("print(get_secret('a'))", data, FAIL,
                  SMARTIOT_SECRETS_PASSPHRASE="typed passphrase")).strip() == "b"


def test_environment_overrides_win(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = ok(run("print(get_secret('codesign-passphrase')); print(get_secret('broker.password'))",
                 data, FAIL, SMARTIOT_CODESIGN_PASSPHRASE="from-env",
                 SMARTIOT_SECRET_BROKER_PASSWORD="broker-env"))
    assert out.split("\n")[:2] == ["from-env", "broker-env"]
    assert not (data / "secrets.enc").exists()


@pytest.mark.parametrize("name", ["", "a b", "../x", "x" * 200])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    result = run(f"set_secret({name!r}, 'v')", tmp_path / "data", FAIL)
    assert result.returncode != 0 and "invalid secret name" in result.stderr


def test_a_keyring_that_cannot_answer_is_not_used(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = ok(run(TRUST_TEST_KEYRING + "set_secret('a', 'b'); print(describe_backend())", data,
                 "tests.integration.secrets.memory_keyring.LockedTestKeyring"))
    assert "encrypted file" in out and "does not answer (KeyringLocked)" in out
