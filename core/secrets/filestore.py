"""The encrypted secrets file used when the machine has no secure OS keyring.

``<data dir>/secrets.enc`` holds one JSON object of name -> value, encrypted
with AES-256-GCM under a key derived by scrypt (n=2^15, r=8, p=1) from a
passphrase. The header (format, KDF parameters, salt) is authenticated as GCM
associated data, so nobody can weaken the parameters without the file failing
to open. Every write re-encrypts with a fresh nonce into a temporary 0600 file
that replaces the old one atomically, under an advisory lock, so a console, a
hub and a CLI command writing at once never lose each other's secrets.

Where the passphrase comes from, in this order:

1. ``SMARTIOT_SECRETS_PASSPHRASE``;
2. the key file ``<data dir>/secrets.key`` (0600), when it exists;
3. a prompt, when the store exists, neither of the above does, and stdin is a
   terminal.

A store is created on the first write. With ``SMARTIOT_SECRETS_PASSPHRASE`` set,
that passphrase protects it. Without it the store is created with a random
passphrase in the key file: a fresh headless machine (the first ``make run``
under xvfb-run, CI) must work without anyone typing, and a prompt would leave
the window, which has no terminal, unable to open the store afterwards. The
key file protects against copying ``secrets.enc`` alone (a backup, a sync of
that one file, a bug report that attaches it), not against copying the whole
data dir; ``describe()`` and ``smartiot config`` say so. ``rekey()``
(``smartiot secrets passphrase``) moves the store to a passphrase the person
keeps and deletes the key file.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import json
import os
import secrets
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.secrets import SecretsError, SecretsLocked, SecretsUnavailable

ENV_PASSPHRASE = "SMARTIOT_SECRETS_PASSPHRASE"
FILE_NAME = "secrets.enc"
KEY_FILE_NAME = "secrets.key"
FORMAT = "smartiot-secrets"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1

# Derived keys by (salt, sha256(passphrase)): scrypt costs ~0.1 s and 32 MiB on
# purpose, which is too much to pay on every read.
_keys: dict[tuple[bytes, bytes], bytes] = {}
_keys_lock = threading.Lock()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str, path: Path) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except ValueError:
        raise SecretsError(f"{path}: field {what!r} is not base64; the file is damaged") from None


def derive_key(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    digest = hashlib.sha256(passphrase).digest()
    with _keys_lock:
        found = _keys.get((salt + f"{n}/{r}/{p}".encode(), digest))
    if found is not None:
        return found
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    key = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)
    with _keys_lock:
        _keys[(salt + f"{n}/{r}/{p}".encode(), digest)] = key
    return key


class EncryptedFileBackend:
    def __init__(self, data_dir: Path) -> None:
        self.directory = Path(data_dir)
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self.directory / FILE_NAME

    @property
    def key_file(self) -> Path:
        return self.directory / KEY_FILE_NAME

    # ------------------------------------------------------------ passphrase
    def _passphrase(self, *, creating: bool) -> tuple[bytes, str]:
        env = os.environ.get(ENV_PASSPHRASE)
        if env:
            return env.encode(), f"the passphrase in {ENV_PASSPHRASE}"
        if self.key_file.exists():
            return self._read_key_file(), f"the key file {self.key_file}"
        if creating:
            return self._create_key_file(), f"the key file {self.key_file}"
        if sys.stdin is not None and sys.stdin.isatty():
            typed = getpass.getpass(f"passphrase for {self.path}: ")
            if typed:
                return typed.encode(), "the passphrase typed at the prompt"
        raise SecretsLocked(
            f"{self.path} is protected by a passphrase and none was given: set "
            f"{ENV_PASSPHRASE} (or run the command in a terminal to be asked for it)"
        )

    def _read_key_file(self) -> bytes:
        mode = self.key_file.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretsLocked(
                f"{self.key_file} is readable by other users (mode {stat.S_IMODE(mode):o}); "
                f"run `chmod 600 {self.key_file}` and check who has read it"
            )
        data = self.key_file.read_bytes().strip()
        if not data:
            raise SecretsLocked(f"{self.key_file} is empty; the store cannot be opened")
        return data

    def _create_key_file(self) -> bytes:
        self.directory.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(32).encode()
        try:
            fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return self._read_key_file()
        with os.fdopen(fd, "wb") as fh:
            fh.write(value + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        return value

    # ------------------------------------------------------------ file format
    def _read(self) -> dict[str, str]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecretsUnavailable(f"{self.path}: cannot read ({exc.strerror})") from None
        try:
            doc = json.loads(raw)
            header = doc["header"]
            kdf = header["kdf"]
            n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
            if header.get("format") != FORMAT or header.get("cipher") != "AES-256-GCM":
                raise ValueError("unknown format")
        except (ValueError, KeyError, TypeError):
            raise SecretsError(
                f"{self.path} is not a smartiot secrets file (or it is damaged); move it "
                "aside to start a new store"
            ) from None
        salt = _unb64(kdf["salt"], "salt", self.path)
        nonce = _unb64(doc.get("nonce"), "nonce", self.path)
        ciphertext = _unb64(doc.get("ciphertext"), "ciphertext", self.path)
        passphrase, source = self._passphrase(creating=False)
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key = derive_key(passphrase, salt, n, r, p)
        try:
            plain = AESGCM(key).decrypt(nonce, ciphertext, _aad(header))
        except InvalidTag:
            hint = ""
            if os.environ.get(ENV_PASSPHRASE) and self.key_file.exists():
                hint = f"; it may be protected by {self.key_file}: unset {ENV_PASSPHRASE}"
            raise SecretsLocked(
                f"cannot open {self.path}: {source} does not unlock it (wrong passphrase, "
                f"or the file was altered){hint}"
            ) from None
        values = json.loads(plain)
        return {str(k): str(v) for k, v in values.items()}

    def _write(self, values: dict[str, str]) -> None:
        header: dict[str, Any]
        try:
            header = json.loads(self.path.read_bytes())["header"]
            salt = _unb64(header["kdf"]["salt"], "salt", self.path)
        except FileNotFoundError:
            salt = os.urandom(16)
            header = {
                "format": FORMAT,
                "version": 1,
                "cipher": "AES-256-GCM",
                "kdf": {"name": "scrypt", "salt": _b64(salt), "n": SCRYPT_N, "r": SCRYPT_R,
                        "p": SCRYPT_P},
            }
        passphrase, _ = self._passphrase(creating=not self.path.exists())
        kdf = header["kdf"]
        key = derive_key(passphrase, salt, int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
        self._store(header, key, values)

    def _store(self, header: dict[str, Any], key: bytes, values: dict[str, str]) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(12)
        plain = json.dumps(values, sort_keys=True).encode()
        ciphertext = AESGCM(key).encrypt(nonce, plain, _aad(header))
        doc = {"header": header, "nonce": _b64(nonce), "ciphertext": _b64(ciphertext)}
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{FILE_NAME}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(json.dumps(doc, indent=1).encode() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One writer at a time across threads and processes (read-modify-write)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.directory / f"{FILE_NAME}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                try:
                    import fcntl
                except ImportError:  # Windows always has a secure keyring
                    fcntl = None  # type: ignore[assignment]
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    # ------------------------------------------------------------ backend API
    def get(self, name: str) -> str | None:
        return self._read().get(name)

    def set(self, name: str, value: str) -> None:
        with self._exclusive():
            values = self._read()
            values[name] = value
            self._write(values)

    def delete(self, name: str) -> bool:
        with self._exclusive():
            values = self._read()
            if name not in values:
                return False
            del values[name]
            self._write(values)
            return True

    def names(self) -> list[str]:
        return sorted(self._read())

    def rekey(self, new_passphrase: str | None) -> None:
        """Re-encrypt under ``new_passphrase`` and delete the key file; with None,
        move back to a fresh key file (a machine nobody can type on)."""
        with self._exclusive():
            values = self._read()
            salt = os.urandom(16)
            header = {
                "format": FORMAT,
                "version": 1,
                "cipher": "AES-256-GCM",
                "kdf": {"name": "scrypt", "salt": _b64(salt), "n": SCRYPT_N, "r": SCRYPT_R,
                        "p": SCRYPT_P},
            }
            if new_passphrase:
                secret = new_passphrase.encode()
            else:
                self.key_file.unlink(missing_ok=True)
                secret = self._create_key_file()
            self._store(header, derive_key(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P), values)
            if new_passphrase:
                self.key_file.unlink(missing_ok=True)

    def describe(self) -> str:
        where = f"encrypted file {self.path} (AES-256-GCM, key from scrypt over a passphrase"
        where += ")" if self.path.exists() else "; created on the first secret stored)"
        if os.environ.get(ENV_PASSPHRASE):
            return f"{where}, unlocked by the passphrase in {ENV_PASSPHRASE}"
        if self.key_file.exists() or not self.path.exists():
            return (
                f"{where}, unlocked by the key file {self.key_file} (0600): this protects "
                f"against copying {FILE_NAME} alone, NOT against copying the whole data dir; "
                "run `smartiot secrets passphrase` to require a passphrase instead"
            )
        return f"{where}, unlocked by a passphrase ({ENV_PASSPHRASE} or asked in a terminal)"


def _aad(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
