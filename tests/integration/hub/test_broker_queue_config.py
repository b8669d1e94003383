"""`smartiot broker config` writes a broker that queues for the hub while it is
away, sized for the fleet, and mosquitto accepts it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from console.cli import main as smartiot
from simulator.broker import find_free_port, find_mosquitto, wait_for_port


def test_team_broker_queues_telemetry_for_the_hub(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    port = find_free_port()
    out = tmp_path / "broker"
    assert smartiot(["broker", "config", "--out", str(out), "--devices", "10000",
                     "--interval", "5", "--hub-outage", "10", "--bind", "127.0.0.1",
                     "--port", str(port)]) == 0
    printed = capsys.readouterr().out
    assert "hub restarts lose nothing" in printed and "1,500,000 messages" in printed
    conf = (out / "mosquitto.conf").read_text()
    assert "queue_qos0_messages true" in conf.splitlines()
    assert "max_queued_messages 1500000" in conf.splitlines()
    assert "smartiot/hub/status" in (out / "acl").read_text()

    binary = find_mosquitto()
    assert binary, "mosquitto is installed by `make test`"
    broker = subprocess.Popen([binary, "-c", str(out / "mosquitto.conf")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert wait_for_port("127.0.0.1", port, 10), broker.stdout.read() if broker.stdout \
            else "mosquitto did not start"
        assert broker.poll() is None
    finally:
        broker.terminate()
        try:
            broker.wait(30)
        except subprocess.TimeoutExpired:  # what it does on SIGTERM is not what this tests
            broker.kill()
            broker.wait(10)


def test_a_bad_queue_size_is_one_clear_line(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert smartiot(["broker", "config", "--out", str(tmp_path / "b"), "--devices", "3",
                     "--interval", "0"]) == 2
    err = capsys.readouterr().err
    assert "--hub-outage/--interval" in err and "positive number of seconds" in err
