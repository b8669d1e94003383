"""One rule for credentials (plugins/aws/clients.py ``clients_for``): the aws
backend, the Lambda wiring and the sandbox all take their clients from it, so
"a loopback endpoint with nothing configured gets dummy keys, anything else
gets the person's own" cannot drift between two copies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def no_aws_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_the_backend_takes_its_clients_from_clients_for(monkeypatch: pytest.MonkeyPatch) -> None:
    import plugins.aws.backend as backend_module
    from plugins.aws.clients import clients_for
    from plugins.aws.settings import AwsSettings

    made: list[Any] = []

    def recording(settings: AwsSettings) -> Any:
        made.append(clients_for(settings))
        return made[-1]

    monkeypatch.setattr(backend_module, "clients_for", recording)
    settings = AwsSettings(region="eu-west-1", stage="c", endpoint_url="http://127.0.0.1:9")
    backend = backend_module.build_aws_backend_for(settings)
    assert made and backend.clients is made[0]


@pytest.mark.usefixtures("no_aws_configuration")
@pytest.mark.parametrize("endpoint, dummy", [("http://127.0.0.1:5000", True),
                                             ("http://localhost:5000", True),
                                             ("http://[::1]:5000", True),
                                             ("https://dynamodb.eu-west-1.amazonaws.com", False),
                                             ("", False)])
def test_only_a_loopback_endpoint_gets_dummy_keys(endpoint: str, dummy: bool) -> None:
    from plugins.aws.backend import build_aws_backend_for
    from plugins.aws.settings import AwsSettings

    backend = build_aws_backend_for(AwsSettings(region="eu-west-1", stage="c",
                                                endpoint_url=endpoint))
    found = backend.clients.dynamodb._request_signer._credentials
    if dummy:
        assert found.access_key == "testing"
    else:
        assert found is None  # nothing configured: botocore refuses to sign, no dummy keys
