"""boto3 sessions and clients for the adapters: the one module that imports
boto3 at the top, imported only when the aws backend is built."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from plugins.aws import errors
from plugins.aws.settings import AwsSettings

_TIMEOUTS = BotoConfig(connect_timeout=5, read_timeout=30)
# Presigned URLs with SigV4 (botocore's default for them is SigV2, which S3
# refuses in newer regions), so the encryption header is a signed header.
_S3_SIGNING = BotoConfig(signature_version="s3v4")


def boto_config(settings: AwsSettings, service: str = "") -> BotoConfig:
    """The one place retries are set: botocore's standard mode by default
    (exponential backoff with jitter on throttling, 5xx and dropped
    connections), or adaptive, which also slows this client down while AWS
    throttles it; the profile's aws_retry_mode and aws_max_attempts. What is
    still failing after the last attempt becomes an error naming the service
    and the resource (plugins/aws/errors.py)."""
    config = _TIMEOUTS.merge(BotoConfig(retries={"mode": settings.retry_mode,
                                                 "total_max_attempts": settings.max_attempts}))
    return config.merge(_S3_SIGNING) if service == "s3" else config


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
                client = self._session.client(
                    service, endpoint_url=self.settings.endpoint_url or None,
                    config=boto_config(self.settings, service))
                errors.install(client, self.settings)
                self._clients[service] = client
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
