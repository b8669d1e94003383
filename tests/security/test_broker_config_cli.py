"""`smartiot broker config` and `smartiot broker password`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from console.cli import main as smartiot
from simulator.broker_auth import read_password_file, verify_mosquitto_hash


def _config(out: Path, *extra: str) -> int:
    return smartiot(["broker", "config", "--out", str(out), *extra])


def test_rerunning_keeps_every_password(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert _config(tmp_path / "one", "--devices", "3", "--console", "maria:engineer") == 0
    out = capsys.readouterr().out
    # hub, commander, maria, 3 devices
    assert "passwd (6 users)" in out and "mosquitto -c" in out
    assert smartiot(["broker", "password", "--hub"]) == 0
    hub = capsys.readouterr().out.strip()
    assert smartiot(["broker", "password", "--device", "env-00002"]) == 0
    device = capsys.readouterr().out.strip()
    assert smartiot(["broker", "password", "--console", "maria"]) == 0
    maria = capsys.readouterr().out.strip()
    assert smartiot(["broker", "password", "--commander"]) == 0
    commander = capsys.readouterr().out.strip()

    assert _config(tmp_path / "two", "--devices", "5", "--console", "maria:engineer") == 0
    users = read_password_file(tmp_path / "two" / "passwd")
    assert verify_mosquitto_hash(hub, users["smartiot.hub"])
    assert verify_mosquitto_hash(device, users["env-00002"])
    assert verify_mosquitto_hash(maria, users["console.maria"])
    assert verify_mosquitto_hash(commander, users["smartiot.commander"])
    assert len(users) == 8
    assert (tmp_path / "two" / "passwd").stat().st_mode & 0o077 == 0  # owner only
    conf = (tmp_path / "two" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and hub not in conf


def test_bad_input_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    devices = tmp_path / "devices.txt"
    devices.write_text("pump-1\npump/2\n")
    assert _config(tmp_path / "out", "--device-list", str(devices)) == 2
    assert "devices.txt line 2" in capsys.readouterr().err
    assert _config(tmp_path / "out", "--devices", "1", "--mtls-port", "8884") == 2
    assert "TLS listeners need --cafile" in capsys.readouterr().err
    assert _config(tmp_path / "out", "--devices", "1", "--console", "bob:boss") == 2
    assert "'boss' is not one of" in capsys.readouterr().err
    assert smartiot(["broker", "password", "--console", "nobody"]) == 1
    assert "no broker.console.nobody.password" in capsys.readouterr().err


def test_python_reads_hashes_written_by_mosquitto_passwd(tmp_path: Path) -> None:
    """The amqtt fallback reads a password file a team made with mosquitto's own tool."""
    tool = shutil.which("mosquitto_passwd")
    assert tool, "mosquitto_passwd is part of the mosquitto package `make test` installs"
    path = tmp_path / "passwd"
    path.write_text("pump-1:open sesame\n")
    subprocess.run([tool, "-U", str(path)], check=True)
    hashed = read_password_file(path)["pump-1"]
    assert hashed.startswith("$7$")
    assert verify_mosquitto_hash("open sesame", hashed)
    assert not verify_mosquitto_hash("open sesame!", hashed)
