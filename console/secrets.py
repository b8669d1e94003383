"""Secrets live in the OS keyring under the service name ``smartiot``.

The config file refuses secret-looking keys and points here instead."""

from __future__ import annotations

import getpass
import sys

SERVICE = "smartiot"


def run_secrets_command(action: str, name: str) -> int:
    import keyring
    import keyring.errors

    try:
        if action == "set":
            value = getpass.getpass(f"value for {name}: ") if sys.stdin.isatty() else (
                sys.stdin.readline().rstrip("\n")
            )
            if not value:
                print("smartiot: empty secret not stored", file=sys.stderr)
                return 1
            keyring.set_password(SERVICE, name, value)
            print(f"stored {name} in the OS keyring ({keyring.get_keyring().name})")
        elif action == "delete":
            keyring.delete_password(SERVICE, name)
            print(f"deleted {name}")
        else:
            found = keyring.get_password(SERVICE, name) is not None
            print(f"{name}: {'set' if found else 'not set'}")
            return 0 if found else 1
    except keyring.errors.KeyringError as exc:
        print(
            f"smartiot: the OS keyring is not available ({exc}); install and unlock a "
            "Secret Service (GNOME Keyring or KWallet) and try again",
            file=sys.stderr,
        )
        return 1
    return 0
