"""The code-signing key: generated on first use, kept encrypted on disk.

The private key lives in ``<data dir>/codesign/signing-key.pem`` as encrypted
PKCS#8; its passphrase is a secret named ``codesign-passphrase`` in
:mod:`core.secrets` (the OS keyring, or on a machine without one the encrypted
secrets file), so copying the key file alone does not copy the ability to
sign. Build machines may set ``SMARTIOT_CODESIGN_PASSPHRASE`` instead. Neither
the key nor the passphrase is ever logged or put into an error message.

The public key is written next to it (``signing-key.pub.pem``) because devices
must be provisioned with it; older public keys under ``trusted/`` stay valid
for verifying images signed before a key rotation.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from core.crypto import codesign
from core.errors import SmartIotError

KEYRING_SERVICE = "smartiot"
KEYRING_NAME = "codesign-passphrase"
ENV_PASSPHRASE = "SMARTIOT_CODESIGN_PASSPHRASE"


class KeyringUnavailable(SmartIotError):
    pass


def keyring_passphrase(create: bool) -> bytes | None:
    """Read (or, with ``create``, generate and store) the passphrase.

    It goes through :mod:`core.secrets`, so a machine without an OS keyring keeps
    it in the encrypted secrets file instead of failing; ``SMARTIOT_CODESIGN_PASSPHRASE``
    still overrides both."""
    from core.secrets import SecretsError, get_secret, set_secret

    try:
        stored = get_secret(KEYRING_NAME)
        if stored is None and create:
            stored = secrets.token_urlsafe(32)
            set_secret(KEYRING_NAME, stored)
    except SecretsError as exc:
        raise KeyringUnavailable(
            f"the code-signing key's passphrase cannot be kept safely: {exc}"
        ) from None
    return stored.encode() if stored is not None else None


class CodeSigningKeys:
    def __init__(
        self,
        directory: Path,
        passphrase: Callable[[bool], bytes | None] = keyring_passphrase,
    ) -> None:
        self.directory = directory
        self._passphrase = passphrase
        self._key: codesign.PrivateKey | None = None

    @property
    def private_path(self) -> Path:
        return self.directory / "signing-key.pem"

    @property
    def public_path(self) -> Path:
        return self.directory / "signing-key.pub.pem"

    @property
    def exists(self) -> bool:
        return self.private_path.exists()

    def signing_key(self) -> codesign.PrivateKey:
        """The key, created (with its passphrase) the first time anyone signs."""
        if self._key is not None:
            return self._key
        if self.private_path.exists():
            secret = self._passphrase(False)
            if secret is None:
                from core.secrets import describe_backend

                raise SmartIotError(
                    f"{self.private_path} exists but its passphrase is not in the secrets "
                    f"store ({describe_backend()}) nor in {ENV_PASSPHRASE}; restore it, or "
                    "move the key aside to start a new one (devices must then trust the new "
                    "public key)"
                )
            self._key = codesign.load_private_pem(self.private_path.read_bytes(), secret)
            return self._key
        secret = self._passphrase(True)
        if secret is None:
            raise KeyringUnavailable("no passphrase could be created for the code-signing key")
        key = codesign.generate_key()
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_private(self.private_path, codesign.encrypted_private_pem(key, secret))
        self.public_path.write_bytes(codesign.public_pem(key))
        self._key = key
        return key

    def sign(self, data: bytes) -> tuple[bytes, str]:
        key = self.signing_key()
        return codesign.sign(key, data), codesign.key_id(key)

    def current_key_id(self) -> str:
        """The id devices know this key by; read from the public key when it exists,
        so asking does not need the passphrase."""
        if self.public_path.exists():
            return codesign.key_id(codesign.load_public_pem(self.public_path.read_bytes()))
        return codesign.key_id(self.signing_key())

    def public_pem(self) -> bytes:
        """Creates the key pair if there is none yet: devices need a key to trust."""
        if not self.public_path.exists():
            self.signing_key()
        return self.public_path.read_bytes()

    @property
    def team_trust_dir(self) -> Path:
        """The team's trusted keys (from the database) as files, for devices that
        are provisioned from key files (the local demo fleet re-reads them)."""
        return self.directory / "team-trusted"

    def write_team_trust(self, pems: dict[str, bytes]) -> None:
        """Make ``team_trust_dir`` hold exactly ``pems`` (key id -> public PEM):
        a revoked key's file goes, so the devices stop trusting it."""
        directory = self.team_trust_dir
        directory.mkdir(parents=True, exist_ok=True)
        wanted = {f"{key_id}.pem": pem for key_id, pem in pems.items()}
        for path in directory.glob("*.pem"):
            if path.name not in wanted:
                path.unlink(missing_ok=True)
        for name, pem in wanted.items():
            path = directory / name
            if not path.exists() or path.read_bytes() != pem:
                temporary = path.with_suffix(".tmp")
                temporary.write_bytes(pem)
                temporary.replace(path)

    def trusted(self) -> dict[str, codesign.PublicKey]:
        """key id -> public key: the current key plus any kept under ``trusted/``."""
        keys: dict[str, codesign.PublicKey] = {}
        paths = sorted((self.directory / "trusted").glob("*.pem"))
        if self.public_path.exists():
            paths.append(self.public_path)
        for path in paths:
            key = codesign.load_public_pem(path.read_bytes())
            keys[codesign.key_id(key)] = key
        return keys


def _write_private(path: Path, data: bytes) -> None:
    """Owner-only from the first byte: no window where the file is world-readable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
