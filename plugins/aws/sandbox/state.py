"""The running sandbox's state file, ``<data dir>/aws-sandbox.json``: the
same object ``--json`` prints (endpoints, pool ids, the WebSocket URL, demo
logins), written when the sandbox is up and removed when it stops.

The ``aws-local`` profile (core.config) names the sandbox's default ports;
what changes on every start — the Cognito user pool and app client ids, the
demo passwords — is read from here (:func:`running_sandbox`). The file is
created with mode 0600 because it holds the demo users' passwords."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

STATE_FILE = "aws-sandbox.json"


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def write_state(data_dir: Path, info: dict[str, Any]) -> Path:
    path = state_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(info, out, indent=2)
    return path


def remove_state(data_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        state_path(data_dir).unlink()


def running_sandbox(data_dir: Path) -> dict[str, Any] | None:
    """The state of the sandbox running for this data dir, or None when there
    is none (no file, or its process is gone: a sandbox killed with -9)."""
    try:
        info = json.loads(state_path(data_dir).read_text())
    except (FileNotFoundError, ValueError):
        return None
    pid = info.get("pid") if isinstance(info, dict) else None
    if not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return dict(info)
