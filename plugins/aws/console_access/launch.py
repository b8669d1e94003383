"""``smartiot --profile aws-local`` with no sandbox running starts one.

The sandbox runs as its own process (``smartiot aws sandbox --json``, the
same command a person types), with this console's data directory so its
state file lands where the console reads it. The console owns it: closing
the console stops it (SIGTERM, the sandbox's own orderly stop). Its log goes
to ``<data dir>/aws-sandbox.log``; start-up takes 11-16 s on a 2-core machine.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from core.errors import SmartIotError

log = logging.getLogger(__name__)

READY_S = 120.0
LOG_FILE = "aws-sandbox.log"


class SandboxFailed(SmartIotError):
    """The sandbox the console started did not come up."""


class LaunchedSandbox:
    def __init__(self, data_dir: Path, *, extra_args: tuple[str, ...] = (),
                 ready_s: float = READY_S) -> None:
        self.data_dir = data_dir
        self.extra_args = extra_args
        self.ready_s = ready_s
        self.process: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    def start(self) -> dict[str, Any]:
        """Start it and wait for its one JSON line (its state file is written by then)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SMARTIOT_DATA_DIR": str(self.data_dir)}
        print("smartiot: starting the AWS sandbox (smartiot aws sandbox; about 15 s)…",
              file=sys.stderr, flush=True)
        with open(self.log_path, "a") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "console.cli", "aws", "sandbox", "--json",
                 *self.extra_args],
                stdout=subprocess.PIPE, stderr=log_file, stdin=subprocess.DEVNULL,
                text=True, env=env)
        assert self.process.stdout is not None
        line = _read_line(self.process.stdout, self.ready_s)
        try:
            info = json.loads(line) if line else None
        except ValueError:
            info = None
        if not isinstance(info, dict):
            ended = self.process.poll()  # a sandbox that stopped at once (a port in use)
            self.stop()
            how = (f"stopped as it started (exit status {ended})" if ended is not None
                   else f"did not start within {self.ready_s:.0f} s")
            raise SandboxFailed(
                f"the AWS sandbox {how} (see {self.log_path}: "
                f"{_tail(self.log_path)}); are its ports (5000, 3000, 1884, 9001) taken? "
                "Start it yourself with `smartiot aws sandbox` to see why")
        self.info = info
        log.info("AWS sandbox started (pid %s) in %.1f s", self.process.pid,
                 float(info.get("ready_s") or 0))
        return info

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # SIGTERM: the sandbox stops every part in order
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


def _read_line(stream: IO[str], timeout_s: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True,
                     name="sandbox-ready").start()
    try:
        return lines.get(timeout=timeout_s)
    except queue.Empty:
        return ""


def _tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return text[-1][:300] if text else "empty log"
