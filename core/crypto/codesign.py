"""Firmware code signing: ECDSA on P-256 over SHA-256, as AWS IoT OTA uses.

Signatures are DER-encoded (what ``cryptography`` and AWS Signer produce).
Devices trust public keys by ``key_id`` (the first 16 hex digits of the
SHA-256 of the key's DER SubjectPublicKeyInfo), so a job document can say
which key signed the image without carrying the key itself: a device must
never take the key to check a signature from the same message as the signature.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from core.errors import ValidationError

PrivateKey = ec.EllipticCurvePrivateKey
PublicKey = ec.EllipticCurvePublicKey


def generate_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def sign(key: PrivateKey, data: bytes) -> bytes:
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def verify(public_key: PublicKey, data: bytes, signature: bytes) -> bool:
    """False for any signature that does not verify, including garbage bytes."""
    try:
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_digest(key: PrivateKey, sha256: bytes) -> bytes:
    """The same signature :func:`sign` makes over the data, from its SHA-256:
    a console signs a large image it hashed while reading it, once."""
    return key.sign(sha256, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


def verify_digest(public_key: PublicKey, sha256: bytes, signature: bytes) -> bool:
    """:func:`verify` of data known only by its SHA-256 (an image uploaded
    straight to storage, whose stored bytes were checked to hash to it)."""
    try:
        public_key.verify(signature, sha256, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except (InvalidSignature, ValueError):
        return False
    return True


def public_pem(key: PrivateKey | PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_pem(pem: bytes) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise ValidationError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValidationError("code-signing keys must be ECDSA P-256 public keys")
    return key


def key_id(key: PrivateKey | PublicKey) -> str:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def encrypted_private_pem(key: PrivateKey, passphrase: bytes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def load_private_pem(pem: bytes, passphrase: bytes) -> PrivateKey:
    """Errors never echo the passphrase or key material."""
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase)
    except (ValueError, TypeError):
        raise ValidationError(
            "the code-signing key could not be decrypted (wrong passphrase or damaged file)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValidationError("the code-signing key is not an ECDSA key")
    return key
