"""The SigV4-presigned WebSocket URL of IoT Core's MQTT endpoint.

IoT Core authenticates a WebSocket client by a query-string signature of
``GET /mqtt`` for the service ``iotdevicegateway`` (AWS IoT developer guide,
"MQTT over the WebSocket protocol"). With temporary credentials the session
token is appended *after* signing: IoT Core leaves ``X-Amz-Security-Token``
out of the canonical request, unlike every other SigV4 service, so it must
not be signed in. botocore's ``SigV4QueryAuth`` computes the signature; the
credentials handed to it therefore carry no token.

The sandbox's stand-in (ws://127.0.0.1:9001/mqtt) gets the same URL, signed
for its host, so the console takes one code path on both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from core.errors import ConfigError

SERVICE = "iotdevicegateway"
PATH = "/mqtt"
# How long the URL itself may be used to open a connection (IoT Core accepts
# up to 7 days); the connection then lives on as long as the credentials.
URL_EXPIRES_S = 300


@dataclass(frozen=True)
class TemporaryCredentials:
    """The identity pool's answer: keys, session token and when they expire
    (epoch seconds). ``repr`` hides the secrets."""

    access_key: str
    secret_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expires_at: float
    identity_id: str = ""


@dataclass(frozen=True)
class Endpoint:
    """Where to connect: scheme (``wss`` on AWS, ``ws`` in the sandbox), host, port."""

    scheme: str
    host: str
    port: int

    @property
    def netloc(self) -> str:
        default = 443 if self.scheme == "wss" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def parse_endpoint(text: str) -> Endpoint:
    """``a1b2c3-ats.iot.eu-west-1.amazonaws.com`` (the account's ``iot:Data-ATS``
    endpoint: wss on 443), or a full ``wss://`` / ``ws://`` URL (the sandbox's
    ``mqtt_ws_url``); the path is always /mqtt."""
    text = text.strip()
    if not text:
        raise ConfigError("no IoT endpoint for live data: set iot_endpoint in the profile "
                          "(aws iot describe-endpoint --endpoint-type iot:Data-ATS)")
    if "://" not in text:
        text = f"wss://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("wss", "ws") or not parts.hostname:
        raise ConfigError(f"iot_endpoint {text!r} is not an IoT endpoint host name or a "
                          "wss:// (ws:// for the sandbox) URL")
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    return Endpoint(parts.scheme, parts.hostname, port)


def presigned_url(endpoint: Endpoint, region: str, credentials: TemporaryCredentials, *,
                  expires_s: int = URL_EXPIRES_S) -> str:
    """``wss://host/mqtt?X-Amz-Algorithm=...&X-Amz-Signature=...&X-Amz-Security-Token=...``."""
    request = AWSRequest(method="GET", url=f"https://{endpoint.netloc}{PATH}")
    signer = SigV4QueryAuth(Credentials(credentials.access_key, credentials.secret_key),
                            SERVICE, region, expires=expires_s)
    signer.add_auth(request)
    url = str(request.url)
    if credentials.session_token:
        url += "&X-Amz-Security-Token=" + quote(credentials.session_token, safe="")
    return f"{endpoint.scheme}://{url.split('://', 1)[1]}"


def path_of(url: str) -> str:
    """What paho's ``ws_set_options(path=...)`` takes: the path and the query."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path
