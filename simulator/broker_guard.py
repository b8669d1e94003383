"""Keep an embedded broker from outliving the program that started it.

A console that crashes or is killed (``kill -9``, a segfault in Qt) never runs
its clean-up, and a mosquitto it started would keep its port and its
credentials forever. Two guards, because neither covers everything alone:

* **Parent-death signal** (Linux): the broker is started with
  ``prctl(PR_SET_PDEATHSIG, SIGTERM)``, so the kernel stops it the moment its
  parent dies. The kernel ties that signal to the *thread* that forked, and the
  console starts its backend on a pool thread that ends after a while idle;
  brokers are therefore forked from one long-lived spawner thread.
* **Pid file**: each broker is recorded (its pid and its owner's pid and start
  time) in a per-user run directory. Every start first reaps brokers whose
  owner is gone: one left behind where the signal is unavailable (another OS)
  or missed (the owner died between fork and prctl).

Only processes recorded here, still running the recorded command line, whose
recorded owner is gone, are ever signalled.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PID_DIR_ENV = "SMARTIOT_BROKER_PID_DIR"
_PR_SET_PDEATHSIG = 1


def pid_dir() -> Path:
    override = os.environ.get(PID_DIR_ENV)
    if override:
        return Path(override)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime else Path(tempfile.gettempdir())
    return base / f"smartiot-brokers-{os.getuid()}"


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/PID/stat), which
    tells a live owner from an unrelated process that reused its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


# ---------------------------------------------------------------- parent-death signal
def _die_with_parent(parent: int) -> Callable[[], None]:
    def preexec() -> None:  # runs in the child between fork and exec
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class _Spawner:
    """One daemon thread that forks every guarded child (see module doc)."""

    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="broker-spawner",
                                                daemon=True)
                self._thread.start()
        answer: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._requests.put((fn, answer))
        ok, value = answer.get()
        if not ok:
            raise value
        return value

    def _serve(self) -> None:
        while True:
            fn, answer = self._requests.get()
            try:
                answer.put((True, fn()))
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                answer.put((False, exc))


_SPAWNER = _Spawner()


def spawn(args: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(args, ...)`` for a child that must not outlive this
    process: on Linux it gets the parent-death signal; it is recorded in the
    pid file directory, after stale brokers of dead owners are reaped."""
    reap_stale()
    if sys.platform.startswith("linux"):
        parent = os.getpid()
        process: subprocess.Popen[bytes] = _SPAWNER.run(lambda: subprocess.Popen(
            list(args), preexec_fn=_die_with_parent(parent), **popen_kwargs))
    else:
        process = subprocess.Popen(list(args), **popen_kwargs)
    record(process.pid, list(args))
    return process


# ---------------------------------------------------------------- pid files
def _pid_file(pid: int) -> Path:
    return pid_dir() / f"broker-{pid}.json"


def record(pid: int, args: Sequence[str]) -> None:
    """Best effort: a run directory that cannot be written must not stop a broker."""
    owner = os.getpid()
    entry = {"pid": pid, "args": list(args), "owner_pid": owner,
             "owner_start": process_start_time(owner)}
    try:
        directory = pid_dir()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = directory / f".broker-{pid}.tmp"
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, _pid_file(pid))
    except OSError as exc:
        log.warning("could not record broker %d in %s: %s", pid, pid_dir(), exc)


def forget(pid: int) -> None:
    with contextlib.suppress(OSError):
        _pid_file(pid).unlink()


def _owner_gone(entry: dict[str, Any]) -> bool:
    owner = int(entry.get("owner_pid") or 0)
    if owner <= 0 or not _alive(owner):
        return True
    started = entry.get("owner_start")
    return started is not None and process_start_time(owner) != started


def reap_stale(timeout_s: float = 5.0) -> list[int]:
    """Stop brokers recorded by owners that are gone; returns their pids."""
    directory = pid_dir()
    try:
        files = sorted(directory.glob("broker-*.json"))
    except OSError:
        return []
    reaped: list[int] = []
    for path in files:
        try:
            entry = json.loads(path.read_text())
            pid = int(entry["pid"])
            args = [str(a) for a in entry["args"]]
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable broker pid file %s", path)
            continue
        if not _owner_gone(entry):
            continue
        if _alive(pid) and _cmdline(pid) == args:
            log.warning("stopping broker %d left running by a program that ended (pid %s)",
                        pid, entry.get("owner_pid"))
            _stop(pid, timeout_s)
            reaped.append(pid)
        with contextlib.suppress(OSError):
            path.unlink()
    return reaped


def _stop(pid: int, timeout_s: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid) or _zombie(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"
