"""A throw-away certificate authority for TLS tests (what AWS IoT Core does with
device certificates, on loopback)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TestPki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def _issue(subject: str, key, issuer_name, issuer_key, *, ca=False, server=False):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                         x509.IPAddress(__import__("ipaddress")
                                                        .ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path) -> TestPki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue("smartiot test CA", ca_key, _name("smartiot test CA"), ca_key, ca=True)
    paths = {}
    for label, server, issuer_cert, issuer_key in (
        ("server", True, ca_cert, ca_key),
        ("client", False, ca_cert, ca_key),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(label, key, issuer_cert.subject, issuer_key, server=server)
        (directory / f"{label}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, directory / f"{label}.key")
        paths[label] = (directory / f"{label}.pem", directory / f"{label}.key")
    rogue_ca_key = ec.generate_private_key(ec.SECP256R1())
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = _issue("rogue", rogue_key, _name("rogue CA"), rogue_ca_key)
    (directory / "rogue.pem").write_bytes(rogue.public_bytes(serialization.Encoding.PEM))
    _write_key(rogue_key, directory / "rogue.key")
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(ca_key, directory / "ca.key")
    return TestPki(directory / "ca.pem", *paths["server"], *paths["client"],
                   directory / "rogue.pem", directory / "rogue.key")


def issue_client_cert(pki: TestPki, common_name: str, directory: Path) -> tuple[Path, Path]:
    """A device certificate from the test CA whose common name is ``common_name``
    (mosquitto's ``use_identity_as_username`` makes it the user name)."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    ca_key = serialization.load_pem_private_key((pki.ca.parent / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue(common_name, key, ca_cert.subject, ca_key)
    cert_path, key_path = directory / f"{common_name}.pem", directory / f"{common_name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)
    return cert_path, key_path
