"""A keyring backend that keeps secrets in a JSON file but reports itself as a real,
secure backend (priority > 0, not from keyrings.alt): it stands in for GNOME
Keyring or the macOS Keychain, which a CI machine does not have. Selected by
``PYTHON_KEYRING_BACKEND=tests.integration.secrets.memory_keyring.SecureTestKeyring``."""

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
