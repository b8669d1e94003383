"""The ``aws-local`` profile points at the sandbox's default ports, and the
sandbox's state file tells it the rest (pool ids, demo logins) while it runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from core.config import load_config
from plugins.aws.sandbox.sandbox import SandboxOptions
from plugins.aws.sandbox.state import remove_state, running_sandbox, state_path, write_state


def test_aws_local_names_the_sandboxs_default_endpoints(tmp_path: Path) -> None:
    profile = load_config(tmp_path / "none.toml", tmp_path, env={}).profiles["aws-local"]
    defaults = SandboxOptions()
    assert profile.backend == "aws" and not profile.hub and not profile.demo_fleet
    assert (profile.region, profile.stage) == (defaults.region, defaults.stage)
    assert urlsplit(profile.endpoint_url).port == defaults.aws_port
    assert urlsplit(profile.api_url).port == defaults.api_port
    assert urlsplit(profile.broker).port == defaults.mqtt_port
    assert {urlsplit(u).hostname for u in (profile.endpoint_url, profile.api_url,
                                           profile.broker)} == {defaults.host}


def test_the_state_file_is_private_and_names_a_live_sandbox_only(tmp_path: Path) -> None:
    info = {"api_url": "http://127.0.0.1:3000", "pid": os.getpid(),
            "users": [{"username": "ada.admin", "password": "p", "role": "admin"}]}
    path = write_state(tmp_path, info)
    assert path == state_path(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert running_sandbox(tmp_path) == info

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    write_state(tmp_path, {**info, "pid": int(gone.stdout)})  # a sandbox killed with -9
    assert running_sandbox(tmp_path) is None
    remove_state(tmp_path)
    assert running_sandbox(tmp_path) is None and not path.exists()
