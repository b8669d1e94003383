"""boto3 sessions and clients for the adapters: the one module that imports
boto3 at the top, imported only when the aws backend is built."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from plugins.aws.settings import AwsSettings

# Adaptive retries absorb DynamoDB throttling (ProvisionedThroughputExceeded)
# instead of surfacing it as an error to the person at the console.
_BOTO_CONFIG = BotoConfig(retries={"mode": "adaptive", "max_attempts": 8},
                          connect_timeout=5, read_timeout=30)
# Presigned URLs with SigV4 (botocore's default for them is SigV2, which S3
# refuses in newer regions), so the encryption header is a signed header.
_S3_CONFIG = _BOTO_CONFIG.merge(BotoConfig(signature_version="s3v4"))


class AwsClients:
    """One boto3 session per backend (sessions are not thread-safe to create
    clients from concurrently; clients are thread-safe once made)."""

    def __init__(self, settings: AwsSettings, **credentials: str) -> None:
        self.settings = settings
        self._session = boto3.session.Session(
            profile_name=settings.aws_profile or None, region_name=settings.region,
            **credentials)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service, endpoint_url=self.settings.endpoint_url or None,
                    config=_S3_CONFIG if service == "s3" else _BOTO_CONFIG)
            return self._clients[service]

    @property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")


def clients_for(settings: AwsSettings) -> AwsClients:
    """Clients for explicit settings (the Lambda functions, the sandbox, tests).

    moto and the sandbox accept any credentials; on a loopback endpoint with
    none configured, dummy ones are used so nothing can reach a real account."""
    from urllib.parse import urlsplit

    credentials: dict[str, str] = {}
    host = urlsplit(settings.endpoint_url).hostname or ""
    if settings.endpoint_url and _is_loopback_host(host):
        found = boto3.session.Session(profile_name=settings.aws_profile or None).get_credentials()
        if found is None:
            credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return AwsClients(settings, **credentials)


def _is_loopback_host(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
