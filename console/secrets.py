"""``smartiot secrets``: the command-line face of :mod:`core.secrets`.

The config file refuses secret-looking keys and points here instead. Every
action says which backend holds the secrets, so nobody has to guess whether a
value went to the OS keyring or to the encrypted file."""

from __future__ import annotations

import getpass
import sys

from core import secrets
from core.secrets import SecretsError


def run_secrets_command(action: str, name: str | None) -> int:
    try:
        if action == "list":
            names = secrets.list_secrets()
            print(f"backend: {secrets.describe_backend()}")
            for item in names:
                print(item)
            overrides = secrets.store().env_overrides()
            if overrides:
                print(f"overridden by the environment: {', '.join(overrides)}")
            return 0
        if action == "passphrase":
            return _change_passphrase()
        if not name:
            print(f"smartiot: `smartiot secrets {action}` needs a NAME", file=sys.stderr)
            return 2
        if action == "set":
            value = getpass.getpass(f"value for {name}: ") if sys.stdin.isatty() else (
                sys.stdin.readline().rstrip("\n")
            )
            if not value:
                print("smartiot: empty secret not stored", file=sys.stderr)
                return 1
            secrets.set_secret(name, value)
            print(f"stored {name} in the {secrets.describe_backend()}")
        elif action == "delete":
            if not secrets.delete_secret(name):
                print(f"{name}: not set", file=sys.stderr)
                return 1
            print(f"deleted {name}")
        else:
            found = secrets.get_secret(name) is not None
            print(f"{name}: {'set' if found else 'not set'}")
            return 0 if found else 1
    except SecretsError as exc:
        print(f"smartiot: {exc}", file=sys.stderr)
        return 1
    return 0


def _change_passphrase() -> int:
    if not sys.stdin.isatty():
        new = sys.stdin.readline().rstrip("\n")
    else:
        new = getpass.getpass("new passphrase for the secrets file (empty: a key file): ")
        if new and getpass.getpass("again: ") != new:
            print("smartiot: the passphrases differ; nothing changed", file=sys.stderr)
            return 1
    print(f"secrets: {secrets.change_passphrase(new or None)}")
    if new:
        print("set SMARTIOT_SECRETS_PASSPHRASE where nobody can type it (the window, a hub "
              "service); a terminal asks for it")
    return 0
