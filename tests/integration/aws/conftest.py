"""AWS in tests is moto's server on a loopback port, reached over real HTTP
through boto3's ``endpoint_url`` — the same path the console and the Lambda
handlers take against AWS, with no in-process patching.

One server per test process; each test gets its own ``stage`` so the tables,
buckets and queues it creates (named by stage, as on AWS) never meet another
test's.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

REGION = "eu-west-1"


@dataclass(frozen=True)
class AwsSandbox:
    endpoint_url: str
    region: str
    stage: str

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def resource(self, service: str) -> Any:
        import boto3

        return boto3.resource(service, endpoint_url=self.endpoint_url, region_name=self.region,
                              aws_access_key_id="testing", aws_secret_access_key="testing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The endpoint URL of a moto server for this test process."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> AwsSandbox:
    """A fresh stage on the shared moto server, with dummy credentials in the
    environment so nothing can reach a real account by accident."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return AwsSandbox(moto_server, REGION, "t" + uuid.uuid4().hex[:8])
