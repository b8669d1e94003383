"""This OS user's running embedded brokers, so a second process can add devices.

The console's embedded broker makes its credentials at start and keeps them
in memory, yet QA runs ``smartiot simulate --broker mqtt://127.0.0.1:PORT``
against it from another shell. Each authenticated embedded broker keeps its
files in a directory only this OS user can read (``$XDG_RUNTIME_DIR/smartiot``
or ``<tmp>/smartiot-<uid>``, mode 0700, checked), with a ``broker.json`` saying
which port it serves and which process reloads the password file. A simulator
of the same OS user appends its own devices (passwords derived from a secret
it makes for the run) and has the broker reload. That grants nothing new:
whoever runs as this user already owns the console's database and keyring,
which is the one-process set-up's trust model.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from simulator.broker_auth import (
    PRESENCE_USER,
    BrokerCredentials,
    mosquitto_hash,
    new_secret,
    password_lines,
)

STATE_FILE = "broker.json"


def runtime_root(create: bool = True) -> Path | None:
    """A 0700 directory of ours, or None when it cannot be made safely (someone
    else owns the path, or it is a symlink): then nothing is shared."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    root = Path(base) / "smartiot" if base else Path(tempfile.gettempdir()) / (
        f"smartiot-{os.getuid()}")
    try:
        if create:
            root.mkdir(mode=0o700, parents=False, exist_ok=True)
        info = os.lstat(root)
    except OSError:
        return None
    import stat

    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return root


def private_workdir(prefix: str) -> tempfile.TemporaryDirectory[str]:
    root = runtime_root()
    return tempfile.TemporaryDirectory(prefix=prefix, dir=str(root) if root else None)


def announce(workdir: Path, *, host: str, port: int, kind: str, reload_pid: int) -> None:
    """``reload_pid``: the mosquitto process to SIGHUP; 0 for the in-process amqtt
    broker, which re-reads its password file when an unknown user logs in."""
    state = {"host": host, "port": port, "kind": kind, "reload_pid": reload_pid,
             "owner_pid": os.getpid()}
    path = workdir / STATE_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle)


@dataclass(frozen=True)
class LocalBroker:
    directory: Path
    host: str
    port: int
    kind: str
    reload_pid: int

    def add_devices(self, device_ids: Iterable[str], fleet_secret: str | None = None) -> str:
        """Appends the devices to the broker's password file (their passwords
        derive from ``fleet_secret``, a fresh one by default, returned) and
        asks the broker to reload."""
        secret = fleet_secret or new_secret()
        credentials = BrokerCredentials(secret, "")
        ids = list(dict.fromkeys(device_ids))
        self._replace_logins(ids, [line + "\n" for line in
                                   password_lines(ids, credentials, accounts=False)])
        return secret

    def add_presence_login(self) -> str:
        """A fresh password for the read-only presence account (the retained
        statuses only), returned: what a simulator needs to see which device ids
        are online before it connects its own."""
        password = new_secret()
        self._replace_logins([PRESENCE_USER], [f"{PRESENCE_USER}:{mosquitto_hash(password)}\n"])
        return password

    def _replace_logins(self, users: list[str], lines: list[str]) -> None:
        passwd = self.directory / "passwd"
        replaced = set(users)
        with open(self.directory / "passwd.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two simulators at once: one writer at a time
            # A user added again (a second run) takes the new password.
            kept = [line for line in passwd.read_text().splitlines(keepends=True)
                    if line.partition(":")[0] not in replaced]
            tmp = passwd.with_suffix(".new")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.writelines(kept + lines)
            os.replace(tmp, passwd)
        if self.reload_pid:
            os.kill(self.reload_pid, signal.SIGHUP)


def _runs_from(pid: int, directory: Path) -> bool:
    """Whether ``pid`` is the mosquitto started with this directory's config
    (where /proc exists; elsewhere the process id alone has to do)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not Path("/proc/self").exists():
        return True
    try:
        return str(directory / "mosquitto.conf") in cmdline.read_bytes().decode(errors="replace")
    except OSError:
        return False


def running_console_brokers() -> list[str]:
    """The URLs of this user's embedded brokers that are running (a console's,
    or another `smartiot simulate`'s): what ``--broker console`` picks from."""
    root = runtime_root(create=False)
    if root is None:
        return []
    urls = []
    for state_path in sorted(root.glob(f"*/{STATE_FILE}")):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            state = json.loads(state_path.read_text())
            local = find_local_broker(str(state["host"]), int(state["port"]))
            if local is not None and local.directory == state_path.parent:
                urls.append(f"mqtt://{local.host}:{local.port}")
    return urls


def console_broker() -> str:
    """``--broker console``: the embedded broker of the console running on this
    machine as this OS user, whose port changes at every start."""
    from core.errors import ValidationError

    urls = running_console_brokers()
    if len(urls) == 1:
        return urls[0]
    if not urls:
        raise ValidationError("--broker console: no console with an embedded broker is running as "
                          "this user on this machine; start one (`make run`) or give --broker "
                          "mqtt://host:port")
    raise ValidationError(f"--broker console: {len(urls)} embedded brokers run as this user "
                      f"({', '.join(urls)}); name one with --broker mqtt://host:port")


def find_local_broker(host: str, port: int) -> LocalBroker | None:
    """This user's embedded broker serving ``host:port``, if one is running."""
    root = runtime_root(create=False)
    if root is None or host not in ("127.0.0.1", "localhost", "::1"):
        return None
    for state_path in root.glob(f"*/{STATE_FILE}"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            state = json.loads(state_path.read_text())
            if int(state["port"]) != port:
                continue
            pid = int(state["reload_pid"])
            os.kill(pid or int(state["owner_pid"]), 0)  # still running (raises otherwise)
            if pid and not _runs_from(pid, state_path.parent):
                continue  # a left-over file whose process id was reused: never signal it
            return LocalBroker(state_path.parent, str(state["host"]), port, str(state["kind"]),
                               pid)
    return None
