"""Finding this user's embedded brokers never trusts a stray file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.local_brokers import announce, find_local_broker, runtime_root


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    root = runtime_root()
    assert root == tmp_path / "smartiot"
    return root


def _state(root: Path, name: str, **state: object) -> Path:
    directory = root / name
    directory.mkdir()
    (directory / "broker.json").write_text(json.dumps(state))
    return directory


def test_a_live_process_that_is_not_that_broker_is_never_signalled(runtime: Path) -> None:
    # our own pid is alive, but it is not a mosquitto started from that directory
    _state(runtime, "b1", host="127.0.0.1", port=5555, kind="mosquitto",
           reload_pid=os.getpid(), owner_pid=os.getpid())
    assert find_local_broker("127.0.0.1", 5555) is None


def test_a_dead_broker_and_other_hosts_are_ignored(runtime: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    _state(runtime, "b2", host="127.0.0.1", port=5556, kind="amqtt", reload_pid=0,
           owner_pid=int(dead.stdout))
    assert find_local_broker("127.0.0.1", 5556) is None
    announce(runtime / "b2", host="127.0.0.1", port=5556, kind="amqtt", reload_pid=0)
    assert find_local_broker("127.0.0.1", 5556) is not None  # owned by this live process
    assert find_local_broker("broker.lab", 5556) is None


def test_a_directory_others_can_read_is_not_used(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "smartiot").mkdir(mode=0o755)
    os.chmod(tmp_path / "smartiot", 0o755)
    assert runtime_root() is None


def test_broker_console_finds_the_one_running_console_broker(runtime: Path) -> None:
    from core.errors import ValidationError
    from simulator.local_brokers import console_broker

    with pytest.raises(ValidationError, match="no console with an embedded broker"):
        console_broker()
    (runtime / "c1").mkdir()
    announce(runtime / "c1", host="127.0.0.1", port=5601, kind="amqtt", reload_pid=0)
    assert console_broker() == "mqtt://127.0.0.1:5601"
    (runtime / "c2").mkdir()
    announce(runtime / "c2", host="127.0.0.1", port=5602, kind="amqtt", reload_pid=0)
    with pytest.raises(ValidationError, match="2 embedded brokers") as info:
        console_broker()
    assert "mqtt://127.0.0.1:5601" in str(info.value) and "mqtt://127.0.0.1:5602" in str(info.value)
