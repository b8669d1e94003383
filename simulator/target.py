"""Where simulated devices connect: ``mqtt://host:port`` or ``mqtts://host:port``.

TLS takes a CA file and a client certificate and key, which is what AWS IoT
Core requires. A username/password, when a broker needs one, is read from the
OS keyring by the CLI and handed in here; it is never part of the URL or the
scenario file, so it cannot leak into logs or version control.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from core.errors import ValidationError


@dataclass(frozen=True, slots=True)
class BrokerTarget:
    host: str
    port: int
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # With a fleet secret every device logs in as itself (user name = device id,
    # password derived from the secret: simulator.broker_auth.device_password).
    fleet_secret: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str, *, ca_file: str | None = None, cert_file: str | None = None,
              key_file: str | None = None, username: str | None = None,
              password: str | None = None, fleet_secret: str | None = None) -> BrokerTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValidationError(
                f"broker {url!r} must look like mqtt://host:1883 or mqtts://host:8883"
            )
        if parts.password:
            raise ValidationError(
                "broker URLs must not carry a password; store it in the keyring with "
                "`smartiot secrets set broker.password`"
            )
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise ValidationError(f"broker {url!r} has an invalid port") from None
        files = {"CA": ca_file, "certificate": cert_file, "key": key_file}
        for label, path in files.items():
            if path and not Path(path).is_file():
                raise ValidationError(f"broker TLS {label} file {path} does not exist")
        if (cert_file is None) != (key_file is None):
            raise ValidationError("a client certificate needs its key, and a key its certificate")
        return cls(
            host=parts.hostname,
            port=port,
            tls=tls,
            ca_file=Path(ca_file) if ca_file else None,
            cert_file=Path(cert_file) if cert_file else None,
            key_file=Path(key_file) if key_file else None,
            username=username or parts.username,
            password=password,
            fleet_secret=fleet_secret,
        )

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """One context shared by every session; building 10,000 would cost seconds."""
        if not self.tls:
            return None
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file else None
        )
        if self.cert_file and self.key_file:
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context
