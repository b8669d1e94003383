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
from pathlib import Path
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


@pytest.fixture
def aws_context(aws: AwsSandbox, tmp_path: Path) -> Iterator[Any]:
    """A console (core.context.AppContext, ada the admin of acme) whose profile
    points at this test's stage: the aws backend built through the plugin, as
    a person's config file would have it; no tables are created here."""
    from core.config import load_config
    from core.context import AppContext
    from core.model.roles import Actor, Role
    from core.plugins import PluginManager

    path = tmp_path / "config.toml"
    path.write_text(f'profile = "aws-test"\n[profiles.aws-test]\n'
                    f'endpoint_url = "{aws.endpoint_url}"\nregion = "{aws.region}"\n'
                    f'stage = "{aws.stage}"\n')
    config = load_config(path, tmp_path / "data", env={})
    context = AppContext(config, PluginManager(entry_points=False, blocked=()),
                         actor=Actor("ada", Role.ADMIN, "acme"))
    yield context
    context.close()


@pytest.fixture
def cognito(aws: AwsSandbox) -> Any:
    """This stage's tables, firmware bucket and Cognito user pool, with one
    person per role in organization acme who can sign in
    (tests/integration/aws/cognito_pool.py: CognitoStage)."""
    from tests.integration.aws.cognito_pool import cognito_stage

    return cognito_stage(aws)


# ---------------------------------------------------------------- DynamoDB

class ApiCalls:
    """Every operation a boto3 client sends, as boto3 builds it (botocore's
    ``before-parameter-build`` event: the operation name and its parameters),
    so tests can say "a Query on this index, page after page, and no Scan" of
    DynamoDB, S3, IoT, Timestream alike."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def named(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == operation]

    @property
    def operations(self) -> set[str]:
        return {name for name, _ in self.calls}

    def clear(self) -> None:
        self.calls.clear()


def record_calls(client: Any, service: str) -> ApiCalls:
    """An :class:`ApiCalls` that hears every request ``client`` sends from now
    on (``service`` as botocore names its events: "dynamodb", "iot-data"...)."""
    calls = ApiCalls()
    client.meta.events.register(f"before-parameter-build.{service}", calls)
    return calls


@dataclass
class DynamoFleet:
    """The aws backend over a fresh stage whose tables exist, with small pages
    (2 items) so every listing of a few records spans several pages."""

    backend: Any  # plugins.aws.backend.AwsBackend
    settings: Any  # plugins.aws.settings.AwsSettings
    calls: ApiCalls

    def second_backend(self) -> Any:
        """Another process on the same tables (a second console or Lambda)."""
        from plugins.aws.backend import build_aws_backend_for

        return build_aws_backend_for(self.settings)


PAGE = 2


@pytest.fixture
def dynamo(aws: AwsSandbox) -> DynamoFleet:
    from plugins.aws.backend import build_aws_backend_for
    from plugins.aws.dynamodb.tables import create_tables
    from plugins.aws.settings import AwsSettings

    settings = AwsSettings(region=aws.region, stage=aws.stage, endpoint_url=aws.endpoint_url,
                           page_size=PAGE)
    backend = build_aws_backend_for(settings)
    create_tables(backend.clients.dynamodb, settings)
    return DynamoFleet(backend, settings, record_calls(backend.clients.dynamodb, "dynamodb"))


class DynamoBackedStore:
    """A core.store.Store whose registry, alerts, alert rules and audit trail
    are the DynamoDB adapters (the other ports stay on SQLite): handed to the
    existing service and engine tests in place of their store, it runs the
    same use cases over DynamoDB with the same expectations — the tests are
    reused, not copied."""

    def __init__(self, sql: Any, backend: Any) -> None:
        self._sql = sql
        self.registry = backend.registry
        self.alerts = backend.alerts
        self.rules = backend.rules
        self.audit = backend.audit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sql, name)


@pytest.fixture
def dynamo_store(dynamo: DynamoFleet, tmp_path: Any) -> Iterator[DynamoBackedStore]:
    from core.store import Store

    with Store.open(f"sqlite:///{tmp_path / 'rest-of-the-ports.db'}") as sql:
        yield DynamoBackedStore(sql, dynamo.backend)
