"""Password hashes for people's accounts: argon2id, a memory-hard KDF, so a
stolen ``users`` table costs an attacker memory and time per guess instead
of one cheap SHA round.

The encoded hash (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``) carries its
own parameters, so stronger parameters later apply to new hashes while the
old ones still verify (:func:`needs_rehash` says when to upgrade on sign-in).
Hashes are never logged, returned by a use case or put in an error message.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.errors import ValidationError

MIN_LENGTH = 10
MAX_LENGTH = 1024

# RFC 9106's second recommended option (64 MiB, 3 passes, 4 lanes): argon2-cffi's defaults.
_HASHER = PasswordHasher()


@cache
def _dummy() -> str:
    """Verified when the user does not exist, so an unknown name costs as long as a
    wrong password and the answer's timing does not tell which names exist.
    Made on first use: one argon2 hash is ~0.4 s of CPU that every console
    start-up paid even when nobody signs in."""
    return _HASHER.hash("smartiot: no such account")


def check_password(password: str, where: str = "password") -> str:
    """The password if acceptable; ValidationError naming the rule otherwise
    (never echoing the password)."""
    if len(password) < MIN_LENGTH:
        raise ValidationError(f"{where}: at least {MIN_LENGTH} characters, please")
    if len(password) > MAX_LENGTH:
        raise ValidationError(f"{where}: at most {MAX_LENGTH} characters")
    if password.strip() != password:
        raise ValidationError(f"{where}: must not start or end with spaces")
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(check_password(password))


def verify_password(encoded: str | None, password: str) -> bool:
    """True when ``password`` matches ``encoded``; a missing or unreadable hash
    never matches, and still costs one verification."""
    try:
        return _HASHER.verify(encoded or _dummy(), password) and encoded is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(encoded: str) -> bool:
    try:
        return _HASHER.check_needs_rehash(encoded)
    except (InvalidHashError, ValueError):
        return True
