"""The hub in a child process of the console (``hub_process = true``).

With thousands of devices the hub's network and writer threads keep one
interpreter busy; in the console's process they hold the GIL the window needs
to paint (docs/benchmarks.md, "Console at fleet scale"). The console then
starts the same ``smartiot hub`` loop (``plugins.local.commands.run_hub``) in a
child process on its broker and database, and works beside it as a team
console does (``TeamObserver`` for the live feed and the hub's heartbeat,
``ConsoleClient`` for commands, the shared store for everything else).

The child gets its configuration and the broker logins as one JSON line on
its stdin (never on the command line, which other accounts can read), and
keeps that pipe open: when the console closes it, or dies however it dies, the
child sees end-of-file, stores its inbox and exits. The console's ``close``
waits for that and kills the child only when the drain overruns.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from core.config import Config, Profile
from core.errors import SmartIotError

log = logging.getLogger(__name__)

Login = tuple[str | None, str | None]

READY_WORDS = "hub running:"
# The hub child and the console's receiver child yield the CPU to the window:
# on a machine with fewer cores than busy processes (the simulator, the broker,
# the hub at 10,000 msg/s) the scheduler otherwise shares the cores evenly and
# the window waits its turn for hundreds of milliseconds. Ingest is throughput
# work with a bounded inbox (it sheds and counts under overload, and catches
# up); painting is not.
HUB_NICE = 10
START_WAIT_S = 20.0
DRAIN_S = 10.0


def _spec(config: Config, broker_url: str, hub_login: Login, console_login: Login) -> str:
    """Everything the child needs to rebuild the console's configuration
    exactly (the profile may have been changed in memory: flags, the settings
    dialog, tests), with the broker the console started."""
    profile = dataclasses.replace(config.profile, broker=broker_url, hub=True,
                                  hub_process=False, demo_fleet=False, api_url="",
                                  api_listen="")
    return json.dumps({
        "path": str(config.path), "data_dir": str(config.data_dir),
        "profile": dataclasses.asdict(profile), "theme": config.theme, "user": config.user,
        "role": config.role, "registration": dict(config.registration),
        "hub_login": list(hub_login), "console_login": list(console_login),
    })


class HubProcess:
    """The parent's handle: start the child, see it come up, stop it."""

    def __init__(self, config: Config, broker_url: str, *, hub_login: Login,
                 console_login: Login, drain_s: float = DRAIN_S) -> None:
        self._spec = _spec(config, broker_url, hub_login, console_login)
        self.drain_s = drain_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready = threading.Event()
        self.last_line = ""
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self, wait_s: float = START_WAIT_S) -> HubProcess:
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "plugins.local.hub_process"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env, cwd=root)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(self._spec.encode() + b"\n")
        self.proc.stdin.flush()  # the pipe stays open: its end is the child's stop
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,),
                                        name="hub-process-output", daemon=True)
        self._reader.start()
        if not self.ready.wait(wait_s):
            if self.proc.poll() is not None:
                raise SmartIotError(f"the hub process stopped as it started (exit status "
                                    f"{self.proc.returncode}): {self.last_line}")
            log.warning("the hub process is not connected yet after %.0f s (%s); the "
                        "console goes on and follows it", wait_s, self.last_line or "no word")
        return self

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            if not line:
                continue
            self.last_line = line
            log.info("hub process: %s", line)
            if line.startswith(READY_WORDS):
                self.ready.set()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """End of its stdin asks the child to store its inbox and exit; it is
        killed when that takes longer than ``drain_s`` and a margin."""
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(self.drain_s + 5.0)
        except subprocess.TimeoutExpired:
            log.warning("the hub process did not stop within %.0f s; killed", self.drain_s + 5)
            proc.kill()
            proc.wait(5.0)
        if self._reader is not None:
            self._reader.join(2.0)
        if proc.returncode not in (0, None):
            log.warning("the hub process ended with status %s: %s", proc.returncode,
                        self.last_line)


# ------------------------------------------------------------------ the child
def _config_from(spec: dict[str, Any]) -> Config:
    profile = Profile(**spec["profile"])
    return Config(path=Path(spec["path"]), data_dir=Path(spec["data_dir"]),
                  profile_name=profile.name, profiles={profile.name: profile},
                  theme=spec["theme"], user=spec["user"], role=spec["role"],
                  registration=dict(spec["registration"]))


def _stop_at_eof(stdin: IO[bytes], stop: threading.Event) -> None:
    while stdin.read(4096):
        pass
    stop.set()


def lower_priority(pid: int, nice: int) -> None:
    """``nice`` more than now for process ``pid`` (0: this one); where the
    platform has no such thing, nothing."""
    if hasattr(os, "setpriority"):
        try:
            current = os.getpriority(os.PRIO_PROCESS, pid)
            os.setpriority(os.PRIO_PROCESS, pid, min(19, current + nice))
        except OSError as exc:
            log.info("could not lower the priority of process %d: %s", pid, exc)


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    lower_priority(0, HUB_NICE)
    stdin = sys.stdin.buffer
    line = stdin.readline()
    if not line:
        return 2  # the console was gone before it said anything
    spec = json.loads(line)
    stop = threading.Event()
    threading.Thread(target=_stop_at_eof, args=(stdin, stop), name="console-watch",
                     daemon=True).start()
    from core.context import AppContext
    from core.plugins import PluginManager
    from plugins.local.commands import run_hub

    context = AppContext(_config_from(spec), PluginManager())
    args = argparse.Namespace(
        demo=False, status_every=10.0, drain_timeout=DRAIN_S, api=None, stop=stop,
        logins=(tuple(spec["hub_login"]), tuple(spec["console_login"])),
        person_accounts=False)
    try:
        return run_hub(args, context)
    finally:
        context.close()


if __name__ == "__main__":
    sys.exit(main())
