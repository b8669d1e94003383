"""A keyring backend that keeps secrets in a JSON file, in plain text, and reports
itself as usable (priority > 0, not from keyrings.alt). Selected by
``PYTHON_KEYRING_BACKEND=tests.integration.secrets.memory_keyring.SecureTestKeyring``.

As it is, it is exactly the custom plaintext backend the store must refuse. A test
that needs a secure keyring (GNOME Keyring or the macOS Keychain, which a CI machine
does not have) adds this module to ``core.secrets.SECURE_KEYRING_MODULES`` in the
process first, so it stands in for one."""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend


class SecureTestKeyring(KeyringBackend):
    priority = 5  # type: ignore[assignment]

    @property
    def _path(self) -> Path:
        return Path(os.environ["SMARTIOT_TEST_KEYRING_FILE"])

    def _load(self) -> dict[str, str]:
        try:
            return dict(json.loads(self._path.read_text()))
        except FileNotFoundError:
            return {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}/{username}"] = password
        self._path.write_text(json.dumps(data))

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        data.pop(f"{service}/{username}")
        self._path.write_text(json.dumps(data))


class LockedTestKeyring(SecureTestKeyring):
    """A secure backend that is installed but cannot answer, like GNOME Keyring with
    no unlocked collection on a headless machine."""

    def get_password(self, service: str, username: str) -> str | None:
        from keyring.errors import KeyringLocked

        raise KeyringLocked("the collection is locked")
