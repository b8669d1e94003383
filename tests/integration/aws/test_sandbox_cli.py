"""`smartiot aws sandbox` refuses what it cannot do before starting anything:
one line on stderr naming the option, exit status 2, nothing on stdout (a
script reading the JSON line sees no half-started sandbox)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from console.cli import main


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTIOT_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("SMARTIOT_DATA_DIR", str(tmp_path / "data"))


@pytest.mark.parametrize(("options", "message"), [
    (["--devices", "1"], "--devices 1 must be between 2"),
    (["--rate", "0"], "--rate 0.0 must be above 0"),
    (["--ws-port", "70000"], "--ws-port 70000 is not a port"),
])
def test_bad_options_are_refused(options: list[str], message: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["aws", "sandbox", "--json", *options]) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err


def test_a_taken_port_is_named_before_anything_starts(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["aws", "sandbox", "--json", "--aws-port", "0", "--api-port", str(port),
                     "--mqtt-port", "0", "--ws-port", "0"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"port {port} for the REST API is in use" in err and "--api-port 0" in err
    assert not (tmp_path / "data" / "aws-sandbox.json").exists()
