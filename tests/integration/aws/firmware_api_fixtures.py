"""The REST API over a plain aws backend (no code-signing key on the server,
the team's trusted keys in DynamoDB), served over real HTTP with moto's
server behind it: what the firmware, upload and deployment tests drive."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.crypto.keystore import CodeSigningKeys
from core.model import Device
from core.model.roles import Role
from tests.integration.api.conftest import Client
from tests.integration.aws.conftest import AwsSandbox

TABLES = {"devices", "organizations", "deployments", "audit", "trusted-keys"}


@dataclass
class FirmwareApi:
    aws: AwsSandbox
    backend: Any
    client: Client
    base_url: str
    erin: CodeSigningKeys  # an engineer's own key, on her machine

    def trust(self, keys: CodeSigningKeys, owner: str) -> dict[str, Any]:
        """An admin adds a public key to the team's list (over the API)."""
        reply = self.client.call("POST", "/firmware/keys", {
            "public_pem": keys.public_pem().decode(), "owner": owner}, role=Role.ADMIN,
            user="ada")
        assert reply.status == 201, reply.body
        return dict(reply.data)

    def audit(self) -> list[Any]:
        return list(self.backend.audit.entries())


def keys_in(directory: Path) -> CodeSigningKeys:
    keys = CodeSigningKeys(directory, passphrase=lambda create: b"test passphrase")
    keys.signing_key()
    return keys


@pytest.fixture
def firmware_api(aws: AwsSandbox, tmp_path: Path) -> Iterator[FirmwareApi]:
    with serve_firmware_api(aws, tmp_path) as api:
        yield api


@contextmanager
def serve_firmware_api(aws: AwsSandbox, tmp_path: Path, endpoint_url: str = ""
                       ) -> Iterator[FirmwareApi]:
    """``endpoint_url``: where the backend (and so the presigned URLs) reach
    moto's server, if not directly (a proxy that can cut the link)."""
    from plugins.api.app import make_handler
    from plugins.api.auth import TokenSigner
    from plugins.api.wiring import build_api_services
    from plugins.api.wsgi import ApiWsgiApp, serve, serve_in_thread
    from plugins.aws.backend import build_aws_backend_for
    from plugins.aws.dynamodb.tables import TABLES as ALL_TABLES
    from plugins.aws.dynamodb.tables import create_tables
    from plugins.aws.firmware.s3 import create_bucket
    from plugins.aws.settings import AwsSettings

    settings = AwsSettings(region=aws.region, stage=aws.stage,
                           endpoint_url=endpoint_url or aws.endpoint_url, page_size=2)
    backend = build_aws_backend_for(settings)
    create_tables(backend.clients.dynamodb, settings,
                  tuple(t for t in ALL_TABLES if t.role in TABLES))
    create_bucket(backend.clients.client("s3"), settings)
    backend.registry.upsert_many(
        [Device(f"pump-{i}", device_type="pump", organization="acme", firmware_version="2.0.0")
         for i in range(3)])
    services = build_api_services(backend)  # as the Lambda builds it: no key of its own
    tokens = TokenSigner.from_dir(tmp_path / "api")
    server = serve(ApiWsgiApp(make_handler(lambda: services), tokens), "127.0.0.1", 0)
    serve_in_thread(server)
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        yield FirmwareApi(aws, backend, Client(base, tokens), base,
                          keys_in(tmp_path / "erin-codesign"))
    finally:
        server.shutdown()
        server.server_close()
