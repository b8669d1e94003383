"""`smartiot aws sandbox` refuses what it cannot do before starting anything:
one line on stderr naming the option, exit status 2, nothing on stdout (a
script reading the JSON line sees no half-started sandbox)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.parse
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


def test_sigterm_stops_a_running_sandbox_cleanly(tmp_path: Path) -> None:
    """What a service manager sends: every part stops, exit status 0, the
    state file is gone and the ports are free again."""
    process = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "aws", "sandbox", "--json", "--devices", "2",
         "--aws-port", "0", "--api-port", "0", "--mqtt-port", "0", "--ws-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ.copy())
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        state = tmp_path / "data" / "aws-sandbox.json"
        assert state.exists()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert process.stdout.read() == ""  # the one line was all
        assert not state.exists()
        for url in (info["api_url"], info["endpoint_url"], info["mqtt_url"]):
            parts = urllib.parse.urlsplit(url)
            with socket.socket() as probe:
                assert probe.connect_ex((parts.hostname or "", parts.port or 0)) != 0, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
