"""One place for every secret the product keeps: broker passwords, the code-signing
key's passphrase, database passwords.

Why one module: secrets used to go straight to ``keyring``, so a machine without
a Secret Service (a headless box, a container, CI) could not sign firmware at
all, and with ``keyrings.alt`` installed a plaintext file was chosen silently.
Everyone now calls ``get_secret``/``set_secret``/``delete_secret`` and the
backend is chosen here, once, by one rule:

1. an environment override always wins for reading (``SMARTIOT_SECRET_<NAME>``,
   plus the historical ``SMARTIOT_CODESIGN_PASSPHRASE``), so build machines keep
   working without any store;
2. the OS keyring, when one of the known secure backends is available (Secret
   Service, libsecret, KWallet, macOS Keychain, Windows Credential Locker).
   This is an allow-list: any other backend (``keyrings.alt``'s file keyrings,
   the ``fail``/``null`` backends, a custom class named in
   ``PYTHON_KEYRING_BACKEND``) is refused, never used, because nothing tells a
   plaintext backend from a secure one except knowing where it stores;
3. otherwise an encrypted file in the user data dir (AES-256-GCM, key from
   scrypt over a passphrase), see :mod:`core.secrets.filestore`.

``SMARTIOT_SECRETS_BACKEND=keyring|file`` forces a choice (``keyring`` still
refuses an insecure backend). ``describe_backend()`` says in one line which
backend holds the secrets and how well it protects them; ``smartiot config``
and ``smartiot secrets`` print it.

Secret values never appear in logs or error messages.
"""

from __future__ import annotations

import builtins
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.errors import SmartIotError

SERVICE = "smartiot"
ENV_BACKEND = "SMARTIOT_SECRETS_BACKEND"
ENV_PREFIX = "SMARTIOT_SECRET_"
# Names whose environment override predates the generic SMARTIOT_SECRET_* form.
LEGACY_ENV = {"codesign-passphrase": "SMARTIOT_CODESIGN_PASSPHRASE"}
# Names the product itself reads; `smartiot secrets list` looks for these even in
# a keyring entry written before the store kept an index of names.
KNOWN_NAMES = ("codesign-passphrase", "broker.password", "broker.hub.password",
               "broker.fleet_secret")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}")
_INDEX = "__smartiot-secret-names__"


class SecretsError(SmartIotError):
    """A secret could not be read or written; the message says which store and why."""


class SecretsUnavailable(SecretsError):
    """No acceptable backend, or the chosen one failed (a locked or vanished keyring)."""


class SecretsLocked(SecretsError):
    """The encrypted file exists but the passphrase given for it is wrong or missing."""


def env_name(name: str) -> str:
    """``broker.password`` -> ``SMARTIOT_SECRET_BROKER_PASSWORD``."""
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name) or name == _INDEX:
        raise SecretsError(
            f"invalid secret name {name!r}: use letters, digits and . _ - : @ / "
            "(up to 128 characters), e.g. broker.password"
        )
    return name


class Backend(Protocol):
    def get(self, name: str) -> str | None: ...
    def set(self, name: str, value: str) -> None: ...
    def delete(self, name: str) -> bool: ...
    def names(self) -> list[str]: ...
    def describe(self) -> str: ...


# ---------------------------------------------------------------- keyring choice
# The keyring modules whose backends keep secrets in an OS store that encrypts them
# and asks the OS before handing them out. Matched on the exact module, so a subclass
# defined elsewhere (which may store anywhere) is not trusted by inheritance.
SECURE_KEYRING_MODULES: tuple[str, ...] = (
    "keyring.backends.SecretService",
    "keyring.backends.libsecret",
    "keyring.backends.kwallet",
    "keyring.backends.macOS",
    "keyring.backends.Windows",
)
_REFUSED_CLASSES = {
    "keyring.backends.fail.Keyring": "the 'fail' backend stores nothing",
    "keyring.backends.null.Keyring": "the 'null' backend stores nothing",
}


def refusal_reason(backend: Any) -> str | None:
    """Why a keyring backend must not hold secrets, or None when it may."""
    cls = type(backend)
    qual = f"{cls.__module__}.{cls.__qualname__}"
    if qual in _REFUSED_CLASSES:
        return _REFUSED_CLASSES[qual]
    if cls.__module__ not in SECURE_KEYRING_MODULES:
        plain = " (plain text or a fixed obfuscation)" if cls.__module__.startswith(
            "keyrings.alt") else ""
        return (
            f"{qual} is not a known secure keyring{plain}: only Secret Service, libsecret, "
            "KWallet, macOS Keychain and Windows Credential Locker are used"
        )
    try:
        if float(backend.priority) <= 0:
            return f"{qual} has no usable priority ({backend.priority})"
    except Exception:  # noqa: BLE001 - a backend's priority property may raise when unusable
        return f"{qual} is not usable on this machine"
    return None


def pick_keyring() -> tuple[Any | None, str]:
    """The secure keyring backend to use, or (None, why none is acceptable).

    A chainer is looked through: its first secure member is used directly, so a
    plaintext backend that ranks higher never receives a write."""
    try:
        import keyring
        import keyring.backends.chainer
    except Exception as exc:  # noqa: BLE001 - keyring is optional at run time
        return None, f"the keyring package cannot be loaded ({type(exc).__name__})"
    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # noqa: BLE001 - a broken keyring config raises anything
        return None, f"no OS keyring ({type(exc).__name__})"
    candidates = (
        list(backend.backends)
        if isinstance(backend, keyring.backends.chainer.ChainerBackend)
        else [backend]
    )
    reasons: list[str] = []
    for candidate in candidates:
        reason = refusal_reason(candidate)
        if reason is None:
            reason = _probe(candidate)
        if reason is None:
            return candidate, ""
        reasons.append(reason)
    if not reasons:
        return None, "no OS keyring backend is installed"
    return None, "; ".join(reasons)


def _probe(backend: Any) -> str | None:
    """A keyring that is installed but cannot answer (no Secret Service daemon, a
    locked collection on a headless box) is not available: better the encrypted
    file, said so, than a command that fails on every machine of its kind."""
    try:
        backend.get_password(SERVICE, _INDEX)
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot be used here"
        cls = type(backend)
        return f"{cls.__module__}.{cls.__qualname__} does not answer ({type(exc).__name__})"
    return None


class KeyringBackend:
    def __init__(self, backend: Any) -> None:
        self._backend = backend

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - every keyring error becomes one clear message
            raise SecretsUnavailable(
                f"the OS keyring ({self.label}) failed to {what} ({type(exc).__name__}); "
                f"unlock it, or set {ENV_BACKEND}=file to use the encrypted file instead"
            ) from None

    @property
    def label(self) -> str:
        cls = type(self._backend)
        name = getattr(self._backend, "name", "") or f"{cls.__module__}.{cls.__qualname__}"
        return str(name)

    def get(self, name: str) -> str | None:
        value = self._call(f"read {name}", self._backend.get_password, SERVICE, name)
        return None if value is None else str(value)

    def set(self, name: str, value: str) -> None:
        self._call(f"store {name}", self._backend.set_password, SERVICE, name, value)
        names = set(self._index())
        if name not in names:
            names.add(name)
            self._write_index(names)

    def delete(self, name: str) -> bool:
        existed = self.get(name) is not None
        if existed:
            self._call(f"delete {name}", self._backend.delete_password, SERVICE, name)
        names = set(self._index())
        if name in names:
            names.discard(name)
            self._write_index(names)
        return existed

    def names(self) -> list[str]:
        found = set(self._index())
        found.update(n for n in KNOWN_NAMES if self.get(n) is not None)
        return sorted(found)

    def _index(self) -> list[str]:
        import json

        raw = self._call("read the list of names", self._backend.get_password, SERVICE, _INDEX)
        try:
            names = json.loads(raw) if raw else []
        except ValueError:
            names = []
        return [n for n in names if isinstance(n, str)]

    def _write_index(self, names: builtins.set[str]) -> None:
        import json

        self._call("store the list of names", self._backend.set_password, SERVICE, _INDEX,
                   json.dumps(sorted(names)))

    def describe(self) -> str:
        return f"OS keyring ({self.label}), service {SERVICE!r}"


# ---------------------------------------------------------------- the store
def default_data_dir() -> Path:
    """Same rule as the console's dirs (SMARTIOT_DATA_DIR, else the platform's)."""
    override = os.environ.get("SMARTIOT_DATA_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("smartiot", appauthor=False))


@dataclass
class SecretStore:
    """The chosen backend plus the environment overrides; build one per data dir."""

    data_dir: Path
    force: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._backend: Backend | None = None
        self._refused = ""

    @property
    def backend(self) -> Backend:
        with self._lock:
            if self._backend is None:
                self._backend = self._choose()
            return self._backend

    def _choose(self) -> Backend:
        from core.secrets.filestore import EncryptedFileBackend

        force = self.force.strip().lower()
        if force not in ("", "keyring", "file"):
            raise SecretsUnavailable(
                f"{ENV_BACKEND}={self.force!r} is not a secrets backend; use 'keyring' or 'file'"
            )
        if force != "file":
            backend, why = pick_keyring()
            if backend is not None:
                return KeyringBackend(backend)
            if force == "keyring":
                raise SecretsUnavailable(
                    f"{ENV_BACKEND}=keyring but no secure OS keyring is available: {why}"
                )
            self._refused = why
        return EncryptedFileBackend(self.data_dir)

    def get(self, name: str) -> str | None:
        validate_name(name)
        for var in (LEGACY_ENV.get(name), env_name(name)):
            if var and os.environ.get(var):
                return os.environ[var]
        return self.backend.get(name)

    def set(self, name: str, value: str) -> None:
        validate_name(name)
        if not isinstance(value, str) or not value:
            raise SecretsError(f"an empty value for {name} is not stored")
        self.backend.set(name, value)

    def delete(self, name: str) -> bool:
        validate_name(name)
        return self.backend.delete(name)

    def names(self) -> list[str]:
        return self.backend.names()

    def env_overrides(self) -> list[str]:
        """Names of environment variables currently overriding a secret."""
        found = [v for v in LEGACY_ENV.values() if os.environ.get(v)]
        found += sorted(k for k in os.environ if k.startswith(ENV_PREFIX) and os.environ[k])
        return found

    def describe(self) -> str:
        text = self.backend.describe()
        if self._refused:
            text += f"; OS keyring not used: {self._refused}"
        return text


_stores: dict[tuple[str, str], SecretStore] = {}
_stores_lock = threading.Lock()


def store() -> SecretStore:
    """The store for the current data dir and backend choice (both from the environment,
    read on every call so a test or a CLI flag that changes them is followed)."""
    key = (str(default_data_dir()), os.environ.get(ENV_BACKEND, ""))
    with _stores_lock:
        found = _stores.get(key)
        if found is None:
            found = _stores[key] = SecretStore(Path(key[0]), key[1])
        return found


def get_secret(name: str) -> str | None:
    """The secret's value, or None when it is not set anywhere."""
    return store().get(name)


def set_secret(name: str, value: str) -> None:
    """Store (or replace) a secret in the chosen backend."""
    store().set(name, value)


def delete_secret(name: str) -> bool:
    """Remove a secret; True if it was there."""
    return store().delete(name)


def list_secrets() -> list[str]:
    """Names (never values) of the secrets the backend holds."""
    return store().names()


def change_passphrase(new_passphrase: str | None) -> str:
    """Re-encrypt the encrypted file under a passphrase the person keeps (None: a new
    key file). Only the file backend has a passphrase; returns the new description."""
    backend = store().backend
    from core.secrets.filestore import EncryptedFileBackend

    if not isinstance(backend, EncryptedFileBackend):
        raise SecretsError(
            f"secrets are in {backend.describe()}, which has no passphrase of ours to change"
        )
    backend.rekey(new_passphrase)
    return describe_backend()


def describe_backend() -> str:
    """One line: which backend holds the secrets and what it protects against."""
    return store().describe()


__all__ = [
    "SecretStore",
    "SecretsError",
    "SecretsLocked",
    "SecretsUnavailable",
    "change_passphrase",
    "delete_secret",
    "describe_backend",
    "get_secret",
    "list_secrets",
    "set_secret",
    "store",
]
